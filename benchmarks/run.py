"""Speed, memory and quality benchmarks of the samplenet models.

    python benchmarks/run.py [--quick] [--json FILE] [--only NAME[,NAME...]] [--set key=value ...]

Every benchmark runs in its own subprocess (this script with ``--child``), so its peak resident
memory (``ru_maxrss`` read in the child) is its own and TensorFlow state never leaks from one
benchmark to the next. In the child, a warm-up compiles everything first; then each timed run
repeats its unit of work (a generation chunk, a batch of training steps, an encode call, a
matmul) until at least ``--seconds`` have passed, and the table gives the median, min and max
over the runs (3 with ``--quick``, 5 otherwise). Quality benchmarks train once for a fixed
wall-clock budget and report one value.

Benchmarks (``--only`` takes comma-separated names or shell patterns such as ``gen-samplernn*``):
  matmul-peak           fp32 2048x2048 matmul GFLOP/s: the machine's reference peak.
  gen-<preset>-b<B>     generation samples/s (total, per stream) and real-time factor
                        (total samples/s / sample_rate) with ``model.generate_chunks``.
  train-<preset>-b<B>   training targets/s (masked targets per second) with ``model.fit`` on
                        one real batch of the model's pipeline, repeated in memory.
  codec-<preset>        codec encode and decode real-time factors at batch 1.
  quality-<preset>      test bits per sample on builtin:plucked after a wall-clock training
                        budget (plus next-sample accuracy).
``<preset>`` is a preset of ``configs/`` or a family, or one of ``VARIANTS`` (the peers'
configurations). ``--set`` overrides apply to every model benchmark. When
``samplenet.analysis.analyze_model`` knows the FLOPs per sample of the task (generation,
training, encode, decode), speed rows also give the achieved GFLOP/s and its fraction of
matmul-peak measured in the same run.
"""
import argparse
import dataclasses
import datetime
import fnmatch
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {  # name -> (preset or family, constructor overrides)
    "samplernn_peer": ("samplernn_3tier", {
        "frame_sizes": [16, 64], "dim": 1024, "rnn_type": "gru", "num_rnn_layers": 4,
        "q_levels": 256, "quantization": "mu-law"}),
    "wavenet_peer": ("wavenet", {
        "dilations": [2 ** i for i in range(10)] * 3, "filter_width": 3,
        "residual_channels": 128, "dilation_channels": 256, "skip_channels": 128}),
}
SPEED_PRESETS = ("samplernn_2tier", "samplernn_3tier", "samplernn_peer", "wavenet",
                 "wavenet_peer")
CODEC_PRESETS = ("soundstream",)
# Small enough for a few hundred CPU training steps within the budget.
SMALL_SAMPLERNN = {"dim": 256, "seq_len": 128, "train.batch_size": 8}
QUALITY_PRESETS = {"samplernn_2tier": SMALL_SAMPLERNN, "samplernn_3tier": SMALL_SAMPLERNN,
                   "wavenet_toy": {}}
GEN_CHUNK_TOTAL = 2048  # samples of one generation chunk (one compiled loop call), all streams


@dataclasses.dataclass(frozen=True)
class Settings:
    repeats: int
    seconds: float             # minimum wall time of one timed run
    gen_batches: tuple
    train_batches: tuple
    quality_seconds: float     # training budget of a quality benchmark
    codec_seconds: float       # audio length encoded/decoded per call
    matmul_size: int = 2048


FULL = Settings(repeats=5, seconds=3.0, gen_batches=(1, 8, 32), train_batches=(32, 64),
                quality_seconds=60.0, codec_seconds=10.0)
QUICK = Settings(repeats=3, seconds=1.0, gen_batches=(1, 8), train_batches=(8,),
                 quality_seconds=20.0, codec_seconds=2.0)


def registry(settings):
    """Benchmark name -> spec (``kind`` plus its parameters), in running order."""
    table = {"matmul-peak": {"kind": "matmul"}}
    for kind, batches in (("gen", settings.gen_batches), ("train", settings.train_batches)):
        for preset in SPEED_PRESETS:
            for batch in batches:
                table[f"{kind}-{preset}-b{batch}"] = {"kind": kind, "preset": preset,
                                                      "batch": batch}
    for preset in CODEC_PRESETS:
        table[f"codec-{preset}"] = {"kind": "codec", "preset": preset}
    for preset, overrides in QUALITY_PRESETS.items():
        table[f"quality-{preset}"] = {"kind": "quality", "preset": preset,
                                      "overrides": overrides}
    return table


def describe(spec, settings, sets):
    """The config column: preset, every override, batch (or budget)."""
    if spec["kind"] == "matmul":
        return f"{settings.matmul_size}x{settings.matmul_size} fp32"
    base, variant = VARIANTS.get(spec["preset"], (spec["preset"], {}))
    items = {**variant, **spec.get("overrides", {})}
    words = [base] + [f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}"
                      for k, v in items.items()]
    words += list(sets)
    if "batch" in spec:
        words.append(f"batch={spec['batch']}")
    if spec["kind"] == "quality":
        words.append(f"budget={settings.quality_seconds:g}s")
    if spec["kind"] == "codec":
        words.append(f"batch=1 audio={settings.codec_seconds:g}s")
    return " ".join(words)


# ------------------------------------------------------------------------------- child side

def timed_rate(step, seconds):
    """Call ``step()`` (returns units of work done) until ``seconds`` have passed; units/s."""
    done, start = 0, time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def figure(name, unit, values, flops_per_unit=None):
    """One reported figure; ``flops_per_unit`` (FLOPs per unit of ``values``, if known) gives
    its achieved GFLOP/s."""
    return {"figure": name, "unit": unit, "values": [float(v) for v in values],
            "flops_per_unit": flops_per_unit}


def build(spec, sets):
    """``(model, resolved config)`` for a spec plus the ``--set`` overrides."""
    from samplenet.models import registry as models
    base, variant = VARIANTS.get(spec["preset"], (spec["preset"], {}))
    overrides = {**variant, **spec.get("overrides", {}),
                 **dict(models.parse_override(text) for text in sets)}
    config = models.config_for(base, overrides)
    return models.model_from_config(config), config


def flops_per_sample(model, task):
    """FLOPs per audio sample of ``task`` ("generation", "training", "encode", "decode") from
    ``samplenet.analysis.analyze_model``, or None when it does not know them."""
    try:
        from samplenet.analysis import analyze_model
        return float(analyze_model(model, measure=False).flops_per_sample[task])
    except Exception:  # analysis missing, or it does not know this model or task
        return None


def source_for(model, config):
    from samplenet import data
    section = config["data"]
    return data.from_spec(section["spec"], sample_rate=model.sample_rate,
                          valid_fraction=section["valid_fraction"],
                          test_fraction=section["test_fraction"], seed=config["train"]["seed"])


def compiled(model, config):
    from samplenet.training.optimizers import make_optimizer
    model.compile(optimizer=make_optimizer(config["train"]),
                  jit_compile=config["train"]["jit_compile"])
    return model


def bench_matmul(spec, settings, sets):
    import tensorflow as tf
    n = settings.matmul_size
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product()

    def step():
        product().numpy()
        return 2 * n ** 3

    values = [timed_rate(step, settings.seconds) / 1e9 for _ in range(settings.repeats)]
    return {"figures": [figure("matmul", "GFLOP/s", values)]}


def bench_gen(spec, settings, sets):
    model, _ = build(spec, sets)
    batch = spec["batch"]
    chunks = model.generate_chunks(10 ** 9, batch_size=batch, seed=0,
                                   chunk_samples=max(1, GEN_CHUNK_TOTAL // batch))
    next(chunks)  # compiles the loop (and runs any priming/history)

    def step():
        codes, _ = next(chunks)
        return codes.size

    totals = [timed_rate(step, settings.seconds) for _ in range(settings.repeats)]
    return {"figures": [figure("generation total", "samples/s", totals,
                               flops_per_sample(model, "generation")),
                        figure("generation per stream", "samples/s", [t / batch for t in totals]),
                        figure("real-time factor", "x", [t / model.sample_rate for t in totals])]}


def bench_train(spec, settings, sets):
    import numpy as np
    import tensorflow as tf
    from samplenet import data
    model, config = build(spec, sets)
    batch = next(iter(data.training_dataset(model, source_for(model, config), "train",
                                            batch_size=spec["batch"], **config["data"])))
    targets = float(np.sum(batch["mask"])) if "mask" in batch else int(np.size(batch["audio"]))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    compiled(model, config)

    def fit(steps):
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        return steps * targets

    fit(1)  # compiles the train step
    start = time.perf_counter()
    fit(1)
    steps = max(1, int(settings.seconds / (time.perf_counter() - start)))
    values = [timed_rate(lambda: fit(steps), settings.seconds) for _ in range(settings.repeats)]
    return {"figures": [figure("training", "targets/s", values,
                               flops_per_sample(model, "training"))]}


def bench_codec(spec, settings, sets):
    import numpy as np
    model, _ = build(spec, sets)
    num_samples = int(settings.codec_seconds * model.sample_rate)
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (1, num_samples)).astype(np.float32)
    codes = np.asarray(model.encode(audio))
    model.decode(codes)  # warm-up of both directions

    def encode():
        np.asarray(model.encode(audio))
        return num_samples

    def decode():
        np.asarray(model.decode(codes))
        return num_samples

    figures = []
    for name, step in (("encode", encode), ("decode", decode)):
        rates = [timed_rate(step, settings.seconds) for _ in range(settings.repeats)]
        flops = flops_per_sample(model, name)
        figures.append(figure(f"{name} real-time factor", "x",
                              [r / model.sample_rate for r in rates],
                              None if flops is None else flops * model.sample_rate))
    return {"figures": figures}


def bench_quality(spec, settings, sets):
    import keras
    from samplenet import data
    model, config = build(spec, sets)
    source = source_for(model, config)
    batch_size, seed = config["train"]["batch_size"], config["train"]["seed"]

    class Budget(keras.callbacks.Callback):
        """Stop ``settings.quality_seconds`` after the first step (which compiles)."""
        start, steps = None, 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.start is None:
                self.start = time.perf_counter()
            elif time.perf_counter() - self.start >= settings.quality_seconds:
                self.model.stop_training = True

    budget = Budget()
    compiled(model, config).fit(
        data.training_dataset(model, source, "train", batch_size=batch_size, seed=seed,
                              **config["data"]),
        epochs=1, steps_per_epoch=10 ** 9, callbacks=[budget], verbose=0)
    results = model.evaluate(
        data.training_dataset(model, source, "test", batch_size=batch_size, seed=seed,
                              repeat=False, **config["data"]),
        return_dict=True, verbose=0)
    figures = [figure("test bits per sample", "bits", [results["bits_per_sample"]])]
    if "accuracy" in results:
        figures.append(figure("test next-sample accuracy", "fraction", [results["accuracy"]]))
    figures.append(figure("training steps in budget", "steps", [budget.steps]))
    return {"figures": figures}


KINDS = {"matmul": bench_matmul, "gen": bench_gen, "train": bench_train, "codec": bench_codec,
         "quality": bench_quality}


def child_main(job, result_path):
    """Run one benchmark and write its result (or why it is unavailable) as JSON."""
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf
    cores = len(os.sched_getaffinity(0))
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)
    settings = Settings(**job["settings"])
    try:
        result = KINDS[job["spec"]["kind"]](job["spec"], settings, job["sets"])
    except Exception as error:  # reported in the table, the suite goes on
        result = {"unavailable": f"{type(error).__name__}: {error}".splitlines()[0][:300]}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(result_path).write_text(json.dumps(result))


# ------------------------------------------------------------------------------ parent side

def run_child(spec, settings, sets, timeout):
    """Run one benchmark in a fresh interpreter; its result dict."""
    job = {"spec": spec, "settings": dataclasses.asdict(settings), "sets": list(sets)}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    with tempfile.TemporaryDirectory() as folder:
        result_path = Path(folder) / "result.json"
        try:
            process = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(job), str(result_path)],
                env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"unavailable": f"timed out after {timeout:g} s"}
        if result_path.exists():
            return json.loads(result_path.read_text())
        lines = process.stderr.strip().splitlines() or ["no output"]
        return {"unavailable": f"exit code {process.returncode}: {lines[-1][:300]}"}


def summarise(name, spec, result, config, peak_gflops):
    """Add median/min/max per figure, its achieved GFLOP/s and their fraction of the peak."""
    row = {"name": name, "kind": spec["kind"], "config": config, **result}
    for item in row.get("figures", []):
        values = item["values"]
        item.update(median=statistics.median(values), min=min(values), max=max(values))
        if item.get("flops_per_unit"):
            item["achieved_gflops"] = item["median"] * item["flops_per_unit"] / 1e9
            if peak_gflops:
                item["fraction_of_peak"] = item["achieved_gflops"] / peak_gflops
    return row


def machine_info():
    def field(path, key):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
        return None

    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return {"cpu": field("/proc/cpuinfo", "model name"), "cores": len(os.sched_getaffinity(0)),
            "memory": field("/proc/meminfo", "MemTotal"),
            "load_average_at_start": os.getloadavg(), "python": platform.python_version(),
            "tensorflow": version("tensorflow"), "keras": version("keras"),
            "commit": commit or None,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def number(value):
    if value is None:
        return ""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:#.3g}"


def table(rows):
    """A Markdown table, one line per figure."""
    lines = ["| name | config | figure | unit | median | min | max | peak RSS MB "
             "| GFLOP/s (of matmul peak) |", "|" + "---|" * 9]
    for row in rows:
        rss = number(row.get("peak_rss_mb"))
        if "unavailable" in row:
            lines.append(f"| {row['name']} | {row['config']} | unavailable: "
                         f"{row['unavailable']} | | | | | {rss} | |")
            continue
        for i, item in enumerate(row["figures"]):
            first = i == 0  # config and memory on the benchmark's first line
            gflops = number(item.get("achieved_gflops"))
            if "fraction_of_peak" in item:
                gflops += f" ({item['fraction_of_peak']:.0%})"
            lines.append(
                f"| {row['name']} | {row['config'] if first else ''} | {item['figure']} | "
                f"{item['unit']} | {number(item['median'])} | {number(item['min'])} | "
                f"{number(item['max'])} | {rss if first else ''} | "
                f"{gflops} |")
    return "\n".join(lines)


def select(names, only):
    if not only:
        return list(names)
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    for pattern in patterns:
        if not fnmatch.filter(names, pattern):
            raise SystemExit(f"--only {pattern!r} matches no benchmark; known: {', '.join(names)}")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, shorter runs, batches 1 and 8 (training: 8)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated names or patterns")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every model benchmark (repeatable)")
    parser.add_argument("--seconds", type=float, help="minimum seconds of one timed run")
    parser.add_argument("--budget", type=float, help="training seconds of a quality benchmark")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before a benchmark is abandoned")
    parser.add_argument("--list", action="store_true", help="list the benchmark names")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.seconds is not None:
        settings = dataclasses.replace(settings, seconds=args.seconds)
    if args.budget is not None:
        settings = dataclasses.replace(settings, quality_seconds=args.budget)
    specs = registry(settings)
    if args.list:
        print("\n".join(specs))
        return
    machine = machine_info()
    rows, peak = [], None
    for name in select(list(specs), args.only):
        spec, config = specs[name], describe(specs[name], settings, args.sets)
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {config}", file=sys.stderr, flush=True)
        row = summarise(name, spec, run_child(spec, settings, args.sets, args.timeout), config,
                        peak)
        if name == "matmul-peak" and "figures" in row:
            peak = row["figures"][0]["median"]
        rows.append(row)
    print(table(rows))
    if args.json:
        report = {"command": shlex.join(["python", "benchmarks/run.py",
                                         *(sys.argv[1:] if argv is None else argv)]),
                  "machine": machine, "settings": dataclasses.asdict(settings),
                  "matmul_peak_gflops": peak, "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(json.loads(sys.argv[2]), sys.argv[3])
    else:
        main()

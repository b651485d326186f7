"""Speed, memory and quality benchmarks of the samplenet models.

    python benchmarks/run.py [--quick] [--json FILE] [--only NAME[,NAME...]] [--set key=value ...]
                             [--seconds S] [--repeats N] [--budget S] [--threads N]

Every benchmark runs in its own subprocess (this script with ``--child``), so its peak resident
memory (``ru_maxrss`` read in the child) is its own and TensorFlow state never leaks from one
benchmark to the next. In the child, a warm-up compiles everything first; then each timed run
repeats its unit of work (a generation chunk, a batch of training steps, an encode call, a
matmul) until at least ``--seconds`` have passed, and the table gives the median, min and max
over the runs (3 with ``--quick``, 5 otherwise). Quality benchmarks train once for a fixed
wall-clock budget and report one value.

Benchmarks (``--only`` takes comma-separated names or shell patterns such as ``gen-samplernn*``):
  matmul-peak           fp32 2048x2048 matmul GFLOP/s: the machine's reference peak.
  memory-bandwidth      GB/s of streaming fp32 weights from memory through a chain of
                        1024x1024 matrix-vector products (batch 1, 128 MB of weights, far more
                        than the caches), inside one XLA loop as generation does. At batch B,
                        generation reads every weight once per step, about 2 x FLOPs-per-sample
                        / B bytes per sample in fp32, so ``bandwidth x B / (2 x FLOPs per
                        sample)`` bounds samples/s (table column "weight-traffic bound"),
                        with this bandwidth when the model's weights exceed
                        ``CACHE_RESIDENT_MEGABYTES``, else with cache-bandwidth's.
  cache-bandwidth       the same with 8 MB of weights, which stay in the L3 cache.
  memory-bandwidth-bf16 the same chain with bfloat16 weights (GB/s of bfloat16 bytes): whether
                        halving the weight bytes pays on this CPU.
  op-latency            microseconds per link of a chain of dependent 1x32 by 32x32 matrix
                        products with tanh, inside one XLA loop: the cost of one small
                        sequential step (a WaveNet layer at batch 1 is two such links).
  gen-<preset>-b<B>     generation samples/s (total, per stream) and real-time factor
                        (total samples/s / sample_rate) with ``model.generate_chunks``.
  train-<preset>-b<B>   training targets/s (masked targets per second) with ``model.fit`` on
                        one real batch of the model's pipeline, repeated in memory;
                        ``-bf16`` runs the same under the ``mixed_bfloat16`` policy. SampleRNN
                        frame tiers run samplenet's recurrent op (``rnn_implementation=
                        "samplenet"``) on any device; ``-cudnn`` runs the same tiers on cuDNN
                        (needs a GPU; unavailable elsewhere).
  precision-<preset>    held-out bits per sample after the same training steps in float32
                        and in mixed_bfloat16, and their difference.
  codec-<preset>        codec encode and decode real-time factors at batch 1.
  quality-<preset>      test bits per sample on builtin:plucked after a wall-clock training
                        budget (plus next-sample accuracy).
  codec-quality-<preset> SI-SDR and mel distance on builtin:plucked's test split at every
                        bitrate, and each codebook's perplexity, after a training budget
                        (540 s; --quick 60 s; ``--budget`` sets every quality budget).
``<preset>`` is a preset of ``configs/`` or a family, or one of ``VARIANTS`` (the peers'
configurations). ``--set`` overrides apply to every model benchmark. When
``samplenet.analysis.analyze_model`` knows the FLOPs per sample of the task (generation,
training, encode, decode), speed rows also give the achieved GFLOP/s and its fraction of
matmul-peak measured in the same run. ``--threads N`` sets TensorFlow's intra- and inter-op
threads in every benchmark process (default: one per core), as ``generate.py --threads``
does. Every result records the device it ran on (the GPU's name, else "CPU" and the number of
cores): column "device", key ``device``.
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
BF16_PRESETS = ("samplernn_peer", "wavenet_peer")  # training also measured in mixed_bfloat16
BF16 = "mixed_bfloat16"
# SampleRNN presets: training measured with samplenet's recurrent op and with cuDNN.
RNN_PRESETS = tuple(preset for preset in SPEED_PRESETS if preset.startswith("samplernn"))
CODEC_PRESETS = ("soundstream",)
# Small enough for a few hundred CPU training steps within the budget.
SMALL_SAMPLERNN = {"dim": 256, "seq_len": 128, "train.batch_size": 8}
QUALITY_PRESETS = {"samplernn_2tier": SMALL_SAMPLERNN, "samplernn_3tier": SMALL_SAMPLERNN,
                   "wavenet_toy": {}}
GEN_CHUNK_TOTAL = 2048  # samples of one generation chunk (one compiled loop call), all streams
# Codec quality: a CPU-sized SoundStream (quarter of the preset's channels, 256-code books)
# trained for the codec quality budget (about 1,000 steps), then scored at every bitrate.
SMALL_CODEC = {"channels": 8, "codebook_size": 256, "data.segment_seconds": 0.5,
               "segment_samples": 8000, "train.batch_size": 8}
NAIVE_SAMPLES = 8  # samples generated by the naive reference (each recomputes the sequence)
CACHE_MEGABYTES = 8  # cache-bandwidth: weights that fit in the L3 cache, not in L2
BANDWIDTH_CALL_MEGABYTES = 512  # weight bytes read per call of a bandwidth benchmark
CACHE_RESIDENT_MEGABYTES = 16  # fp32 weights up to this stay in the 32 MB L3 cache
REFERENCES = ("matmul-peak", "memory-bandwidth", "cache-bandwidth")  # measured machine limits
LATENCY_LINKS, LATENCY_SIZE = 100, 32  # op-latency: links of the chain per loop iteration


@dataclasses.dataclass(frozen=True)
class Settings:
    repeats: int
    seconds: float             # minimum wall time of one timed run
    gen_batches: tuple
    train_batches: tuple
    quality_seconds: float     # training budget of a quality benchmark
    codec_quality_seconds: float  # training budget of a codec quality benchmark
    codec_seconds: float       # audio length encoded/decoded per call
    precision_steps: int       # training steps of each run of a precision benchmark
    matmul_size: int = 2048
    bandwidth_megabytes: int = 128
    threads: int = 0           # TensorFlow threads per benchmark process; 0 = one per core


FULL = Settings(repeats=5, seconds=3.0, gen_batches=(1, 8, 32), train_batches=(32, 64),
                quality_seconds=60.0, codec_quality_seconds=540.0, codec_seconds=10.0,
                precision_steps=400)
QUICK = Settings(repeats=3, seconds=1.0, gen_batches=(1, 8), train_batches=(8,),
                 quality_seconds=20.0, codec_quality_seconds=60.0, codec_seconds=2.0,
                 precision_steps=40)


def registry(settings):
    """Benchmark name -> spec (``kind`` plus its parameters), in running order."""
    table = {"matmul-peak": {"kind": "matmul"}, "memory-bandwidth": {"kind": "bandwidth"},
             "memory-bandwidth-bf16": {"kind": "bandwidth", "dtype": "bfloat16"},
             "cache-bandwidth": {"kind": "bandwidth", "megabytes": CACHE_MEGABYTES},
             "op-latency": {"kind": "latency"}}
    for kind, batches in (("gen", settings.gen_batches), ("train", settings.train_batches)):
        for preset in SPEED_PRESETS:
            for batch in batches:
                name, spec = f"{kind}-{preset}-b{batch}", {"kind": kind, "preset": preset,
                                                           "batch": batch}
                if kind == "train" and preset in RNN_PRESETS:
                    table[name] = {**spec, "rnn_implementation": "samplenet"}
                    table[f"{name}-cudnn"] = {**spec, "rnn_implementation": "cudnn"}
                else:
                    table[name] = spec
    for preset in BF16_PRESETS:
        for batch in settings.train_batches:
            table[f"train-{preset}-b{batch}-bf16"] = {
                "kind": "train", "preset": preset, "batch": batch, "precision": BF16,
                **({"rnn_implementation": "samplenet"} if preset in RNN_PRESETS else {})}
    for preset in CODEC_PRESETS:
        table[f"codec-{preset}"] = {"kind": "codec", "preset": preset}
    for preset, overrides in QUALITY_PRESETS.items():
        table[f"quality-{preset}"] = {"kind": "quality", "preset": preset,
                                      "overrides": overrides}
    table["naive-wavenet-b1"] = {"kind": "naive", "preset": "wavenet", "batch": 1}
    table["precision-samplernn_3tier"] = {"kind": "precision", "preset": "samplernn_3tier",
                                          "overrides": SMALL_SAMPLERNN}
    table["codec-quality-soundstream"] = {"kind": "codec_quality", "preset": "soundstream",
                                          "overrides": SMALL_CODEC}
    return table


def describe(spec, settings, sets):
    """The config column: preset, every override, batch (or budget), threads if set."""
    words = [_workload(spec, settings, sets)]
    if settings.threads:
        words.append(f"threads={settings.threads}")
    return " ".join(words)


def _workload(spec, settings, sets):
    if spec["kind"] == "matmul":
        return f"{settings.matmul_size}x{settings.matmul_size} fp32"
    if spec["kind"] == "bandwidth":
        megabytes = spec.get("megabytes", settings.bandwidth_megabytes)
        return (f"{megabytes} MB {spec.get('dtype', 'fp32')} weights, "
                f"1024x1024 matrix-vector chain")
    if spec["kind"] == "latency":
        return f"{LATENCY_LINKS} dependent 1x{LATENCY_SIZE} @ {LATENCY_SIZE}x{LATENCY_SIZE} + tanh"
    base, variant = VARIANTS.get(spec["preset"], (spec["preset"], {}))
    items = {**variant, **spec.get("overrides", {})}
    words = [base] + [f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}"
                      for k, v in items.items()]
    words += list(sets)
    if "batch" in spec:
        words.append(f"batch={spec['batch']}")
    if "precision" in spec:
        words.append(spec["precision"])
    if "rnn_implementation" in spec:
        words.append(f"rnn_implementation={spec['rnn_implementation']}")
    if spec["kind"] == "precision":
        words.append(f"steps={settings.precision_steps} float32 vs {BF16}")
    if spec["kind"] == "quality":
        words.append(f"budget={settings.quality_seconds:g}s")
    if spec["kind"] == "codec_quality":
        words.append(f"budget={settings.codec_quality_seconds:g}s")
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


def build(spec, sets, precision=None):
    """``(model, resolved config)`` for a spec plus the ``--set`` overrides, built under the
    Keras dtype policy ``precision`` (default: the spec's, else ``train.mixed_precision``), its
    SampleRNN frame tiers set to the spec's ``rnn_implementation`` if it has one."""
    import keras
    from samplenet import config as schema
    from samplenet.ops import recurrent
    if spec.get("rnn_implementation") == "cudnn" and not recurrent.gpu_visible():
        raise RuntimeError("rnn_implementation=cudnn needs a GPU, and TensorFlow sees none")
    base, variant = VARIANTS.get(spec["preset"], (spec["preset"], {}))
    overrides = {**variant, **spec.get("overrides", {}),
                 **dict(schema.parse_override(text) for text in sets)}
    config = schema.config_for(base, overrides)
    precision = precision or spec.get("precision") or config["train"]["mixed_precision"]
    config["train"]["mixed_precision"] = "" if precision == "float32" else precision
    keras.mixed_precision.set_global_policy(precision or "float32")
    keras.utils.set_random_seed(config["train"]["seed"])  # same initial weights every time
    model = schema.model_from_config(config)
    if "rnn_implementation" in spec:
        for tier in model.tiers:
            tier.rnn_implementation = spec["rnn_implementation"]
    return model, config


def device_name():
    """The device the benchmark runs on: the first GPU TensorFlow sees (its name), else the
    CPU with the number of cores this process may use."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return f"CPU ({len(os.sched_getaffinity(0))} cores)"


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
    """What ``fit`` trains for ``model`` (a codec inside its ``CodecTraining``), compiled with
    the config's optimizer."""
    from samplenet.training.optimizers import make_optimizer
    from samplenet.training.trainer import training_model
    trainee = training_model(model, config)
    trainee.compile(optimizer=make_optimizer(config["train"]),
                    jit_compile=config["train"]["jit_compile"])
    return trainee


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


def product_chain(weights, iterations):
    """A compiled function of a vector ``(1, n)``: ``iterations`` loop steps, each passing the
    vector through ``tanh(vector @ weight)`` for every weight in turn (as a generation loop
    does), inside one XLA while loop."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def chain(vector):
        def body(k, vector):
            for weight in weights:
                vector = tf.tanh(tf.matmul(vector, weight))
            return k + 1, vector
        return tf.while_loop(lambda k, _: k < iterations, body, (tf.constant(0), vector))[1]
    return chain


def bench_bandwidth(spec, settings, sets):
    """GB/s of weights streamed through a chain of 1024x1024 matrix-vector products, looped
    until about ``BANDWIDTH_CALL_MEGABYTES`` have been read per call (so the call overhead does
    not count)."""
    import tensorflow as tf
    size, dtype = 1024, tf.as_dtype(spec.get("dtype", "float32"))
    megabytes = spec.get("megabytes", settings.bandwidth_megabytes)
    layers = megabytes * 2 ** 20 // (size * size * 4)
    iterations = max(1, BANDWIDTH_CALL_MEGABYTES // megabytes)
    weights = [tf.Variable(tf.cast(tf.random.normal([size, size], stddev=size ** -0.5), dtype))
               for _ in range(layers)]
    return _chain_figure(weights, iterations, settings, "weight streaming", "GB/s",
                         lambda calls_per_second: calls_per_second * iterations * layers
                         * size * size * dtype.size / 1e9)


def bench_latency(spec, settings, sets):
    """Microseconds per link of a chain of dependent small products in one XLA loop."""
    import tensorflow as tf
    iterations = 200
    weights = [tf.Variable(tf.random.normal([LATENCY_SIZE, LATENCY_SIZE],
                                            stddev=LATENCY_SIZE ** -0.5))
               for _ in range(LATENCY_LINKS)]
    return _chain_figure(weights, iterations, settings, "dependent product + tanh", "us",
                         lambda calls_per_second: 1e6 / (calls_per_second * iterations
                                                         * LATENCY_LINKS))


def _chain_figure(weights, iterations, settings, name, unit, value_of_rate):
    """Time ``product_chain(weights, iterations)`` calls; ``value_of_rate(calls/s)`` per run."""
    import tensorflow as tf
    chain = product_chain(weights, iterations)
    vector = tf.cast(tf.random.normal([1, weights[0].shape[0]]), weights[0].dtype)
    chain(vector)

    def step():
        chain(vector).numpy()
        return 1

    values = [value_of_rate(timed_rate(step, settings.seconds)) for _ in range(settings.repeats)]
    return {"figures": [figure(name, unit, values)]}


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
    return {"weight_megabytes": model.count_params() * 4 / 2 ** 20,
            "figures": [figure("generation total", "samples/s", totals,
                               flops_per_sample(model, "generation")),
                        figure("generation per stream", "samples/s", [t / batch for t in totals]),
                        figure("real-time factor", "x", [t / model.sample_rate for t in totals])]}


def bench_train(spec, settings, sets):
    """Training targets/s in windows of whole steps timed inside one ``fit`` (the end of a
    ``fit`` call is not part of training: before session 4 each window was its own ``fit``, and
    tf.data's autotuner held every return back for seconds)."""
    import numpy as np
    import tensorflow as tf
    from samplenet import data
    model, config = build(spec, sets)
    batch = next(iter(data.training_dataset(model, source_for(model, config), "train",
                                            batch_size=spec["batch"], **config["data"])))
    targets = float(np.sum(batch["mask"])) if "mask" in batch else int(np.size(batch["audio"]))
    dataset = tf.data.Dataset.from_tensors(batch).repeat().with_options(data.pipeline_options())
    trainee = compiled(model, config)
    trainee.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)  # compiles the train step
    timer = step_windows(settings.seconds, settings.repeats)
    trainee.fit(dataset, epochs=1, steps_per_epoch=10 ** 9, callbacks=[timer], verbose=0)
    values = [steps * targets / elapsed for steps, elapsed in timer.windows]
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


def step_windows(seconds, windows):
    """A Keras callback timing ``windows`` consecutive windows of whole training steps, each at
    least ``seconds`` long, from the end of the ``fit``'s first step (which may compile); then
    it stops training. Its ``windows`` lists ``(steps, elapsed seconds)`` per window."""
    import keras

    class StepWindows(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.windows, self._start, self._steps = [], None, 0

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if self._start is not None:
                self._steps += 1
                if now - self._start < seconds:
                    return
                self.windows.append((self._steps, now - self._start))
                self._steps = 0
            self._start = now
            if len(self.windows) == windows:
                self.model.stop_training = True

    return StepWindows()


def train_for_budget(model, config, source, seconds):
    """``model.fit`` on the train split for ``seconds`` after the first (compiling) step;
    returns the number of steps taken."""
    from samplenet import data

    budget = step_windows(seconds, 1)
    train = config["train"]
    trainee = compiled(model, config)
    trainee.fit(
        data.training_dataset(model, source, "train", batch_size=train["batch_size"],
                              seed=train["seed"], **config["data"]),
        epochs=1, steps_per_epoch=10 ** 9, callbacks=[budget, *trainee.training_callbacks()],
        verbose=0)
    return 1 + budget.windows[0][0]


def bench_quality(spec, settings, sets):
    from samplenet import data
    model, config = build(spec, sets)
    source = source_for(model, config)
    steps = train_for_budget(model, config, source, settings.quality_seconds)
    results = model.evaluate(
        data.training_dataset(model, source, "test", batch_size=config["train"]["batch_size"],
                              seed=config["train"]["seed"], repeat=False, **config["data"]),
        return_dict=True, verbose=0)
    figures = [figure("test bits per sample", "bits", [results["bits_per_sample"]])]
    if "accuracy" in results:
        figures.append(figure("test next-sample accuracy", "fraction", [results["accuracy"]]))
    figures.append(figure("training steps in budget", "steps", [steps]))
    return {"figures": figures}


def bench_codec_quality(spec, settings, sets):
    """Train a codec for the budget; then SI-SDR and mel distance on the test split at every
    bitrate it serves, and each codebook's usage (perplexity, at most codebook_size)."""
    from samplenet import codec_files
    from samplenet.training import trainer
    model, config = build(spec, sets)
    source = source_for(model, config)
    steps = train_for_budget(model, config, source, settings.codec_quality_seconds)
    figures = [figure("training steps in budget", "steps", [steps])]
    for count in range(1, model.num_quantizers + 1):
        report = codec_files.evaluate_source(model, source, "test",
                                             bitrate_kbps=model.bitrate_kbps(count))
        label = f"{report['bitrate_kbps']:g} kbps"
        figures.append(figure(f"SI-SDR at {label}", "dB", [report["si_sdr_db"]]))
        figures.append(figure(f"mel distance at {label}", "", [report["mel_distance"]]))
    usage = trainer.evaluate(model, config, split="test")
    figures += [figure(f"codebook {index} perplexity", "codes", [usage[f"perplexity_{index}"]])
                for index in range(1, model.num_quantizers + 1)]
    return {"figures": figures}


def bench_naive(spec, settings, sets):
    """Cached (fast) generation against the naive reference that recomputes every step."""
    model, _ = build(spec, sets)
    chunks = model.generate_chunks(10 ** 9, batch_size=spec["batch"], seed=0,
                                   chunk_samples=GEN_CHUNK_TOTAL)
    next(chunks)
    fast = [timed_rate(lambda: next(chunks)[0].size, settings.seconds)
            for _ in range(settings.repeats)]
    model.naive_generate(1, batch_size=spec["batch"], seed=0)  # traces the parallel pass

    def naive():
        model.naive_generate(NAIVE_SAMPLES, batch_size=spec["batch"], seed=0)
        return NAIVE_SAMPLES * spec["batch"]

    slow = [timed_rate(naive, settings.seconds) for _ in range(settings.repeats)]
    ratio = sorted(fast)[len(fast) // 2] / sorted(slow)[len(slow) // 2]
    return {"figures": [figure("cached generation", "samples/s", fast),
                        figure("naive generation", "samples/s", slow),
                        figure("cached / naive", "x", [ratio])]}


def bench_precision(spec, settings, sets):
    """The same training steps (same seed and batches) in float32 and in mixed_bfloat16; held-out
    bits per sample of each, and their difference."""
    from samplenet import data
    bits = {}
    for precision in ("float32", BF16):
        model, config = build(spec, sets, precision)
        source = source_for(model, config)
        train = config["train"]
        compiled(model, config).fit(
            data.training_dataset(model, source, "train", batch_size=train["batch_size"],
                                  seed=train["seed"], **config["data"]),
            epochs=1, steps_per_epoch=settings.precision_steps, verbose=0)
        bits[precision] = model.evaluate(
            data.training_dataset(model, source, "test", batch_size=train["batch_size"],
                                  seed=train["seed"], repeat=False, **config["data"]),
            return_dict=True, verbose=0)["bits_per_sample"]
    return {"figures": [figure("test bits per sample, float32", "bits", [bits["float32"]]),
                        figure(f"test bits per sample, {BF16}", "bits", [bits[BF16]]),
                        figure("difference", "bits", [bits[BF16] - bits["float32"]])]}


KINDS = {"matmul": bench_matmul, "bandwidth": bench_bandwidth, "latency": bench_latency,
         "gen": bench_gen,
         "train": bench_train, "codec": bench_codec, "quality": bench_quality,
         "codec_quality": bench_codec_quality, "naive": bench_naive,
         "precision": bench_precision}


def child_main(job, result_path):
    """Run one benchmark and write its result (or why it is unavailable) as JSON."""
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf
    settings = Settings(**job["settings"])
    threads = settings.threads or len(os.sched_getaffinity(0))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    try:
        result = KINDS[job["spec"]["kind"]](job["spec"], settings, job["sets"])
    except Exception as error:  # reported in the table, the suite goes on
        result = {"unavailable": f"{type(error).__name__}: {error}".splitlines()[0][:300]}
    result["device"] = device_name()
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


def summarise(name, spec, result, config, references):
    """Add median/min/max per figure, its achieved GFLOP/s and their fraction of the peak, and
    for generation the weight-traffic bound (see the module docstring). ``references``: the
    medians of the ``REFERENCES`` benchmarks measured so far in this run, by name."""
    row = {"name": name, "kind": spec["kind"], "config": config, **result}
    peak_gflops = references.get("matmul-peak")
    cached = result.get("weight_megabytes", float("inf")) <= CACHE_RESIDENT_MEGABYTES
    bandwidth_gbps = references.get("cache-bandwidth" if cached else "memory-bandwidth")
    for item in row.get("figures", []):
        values = item["values"]
        item.update(median=statistics.median(values), min=min(values), max=max(values))
        if item.get("flops_per_unit"):
            item["achieved_gflops"] = item["median"] * item["flops_per_unit"] / 1e9
            if peak_gflops:
                item["fraction_of_peak"] = item["achieved_gflops"] / peak_gflops
            if spec["kind"] == "gen" and item["unit"] == "samples/s" and bandwidth_gbps:
                item["weight_traffic_bound"] = (bandwidth_gbps * 1e9 * spec["batch"]
                                                / (2 * item["flops_per_unit"]))
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
    lines = ["| name | config | device | figure | unit | median | min | max | peak RSS MB "
             "| GFLOP/s (of matmul peak) | weight-traffic bound |", "|" + "---|" * 11]
    for row in rows:
        rss = number(row.get("peak_rss_mb"))
        device = row.get("device", "")
        if "unavailable" in row:
            lines.append(f"| {row['name']} | {row['config']} | {device} | unavailable: "
                         f"{row['unavailable']} | | | | | {rss} | | |")
            continue
        for i, item in enumerate(row["figures"]):
            first = i == 0  # config, device and memory on the benchmark's first line
            gflops = number(item.get("achieved_gflops"))
            if "fraction_of_peak" in item:
                gflops += f" ({item['fraction_of_peak']:.0%})"
            lines.append(
                f"| {row['name']} | {row['config'] if first else ''} | "
                f"{device if first else ''} | {item['figure']} | "
                f"{item['unit']} | {number(item['median'])} | {number(item['min'])} | "
                f"{number(item['max'])} | {rss if first else ''} | "
                f"{gflops} | {number(item.get('weight_traffic_bound'))} |")
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
    parser.add_argument("--repeats", type=int, help="timed runs per figure (median reported)")
    parser.add_argument("--budget", type=float, help="training seconds of a quality benchmark")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow threads per benchmark process (default: one per core)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before a benchmark is abandoned")
    parser.add_argument("--list", action="store_true", help="list the benchmark names")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.seconds is not None:
        settings = dataclasses.replace(settings, seconds=args.seconds)
    if args.repeats is not None:
        settings = dataclasses.replace(settings, repeats=args.repeats)
    if args.budget is not None:
        settings = dataclasses.replace(settings, quality_seconds=args.budget,
                                       codec_quality_seconds=args.budget)
    if args.threads:
        settings = dataclasses.replace(settings, threads=args.threads)
    specs = registry(settings)
    if args.list:
        print("\n".join(specs))
        return
    machine = machine_info()
    rows, references = [], {}
    for name in select(list(specs), args.only):
        spec, config = specs[name], describe(specs[name], settings, args.sets)
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {config}", file=sys.stderr, flush=True)
        row = summarise(name, spec, run_child(spec, settings, args.sets, args.timeout), config,
                        references)
        if "figures" in row and name in REFERENCES:
            references[name] = row["figures"][0]["median"]
        rows.append(row)
    print(table(rows))
    if args.json:
        report = {"command": shlex.join(["python", "benchmarks/run.py",
                                         *(sys.argv[1:] if argv is None else argv)]),
                  "machine": machine, "settings": dataclasses.asdict(settings),
                  "matmul_peak_gflops": references.get("matmul-peak"),
                  "memory_bandwidth_gbps": references.get("memory-bandwidth"),
                  "cache_bandwidth_gbps": references.get("cache-bandwidth"),
                  "results": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(json.loads(sys.argv[2]), sys.argv[3])
    else:
        main()

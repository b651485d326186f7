"""Learning curves: held-out bits per sample against optimizer steps and seconds, per variant.

Each variant (a name and ``--set`` overrides on top of the common ones) trains the same model
from the same seed on the same batches (the pipelines are deterministic for a seed) and is
evaluated teacher-forced over every held-out file, whole, before training and every
``--eval_every`` steps. Variants run one after another in one process; results are written to
``--json`` after each variant, and a variant already in that file is not run again (a killed
run continues with the next one).

  # 10 training files and 4 held-out files from the Debian music corpus (scripts/debian_audio.py)
  python benchmarks/learning_curve.py prepare --corpus /work/data/music16k \\
      --out /work/data/curve --train_files 10 --heldout_files 4
  python benchmarks/learning_curve.py run --data /work/data/curve/train \\
      --heldout /work/data/curve/heldout --model samplernn_3tier --set dim=512 \\
      --set train.batch_size=16 --steps 600 --eval_every 200 \\
      --variant preset= --variant eps1e-8=train.epsilon=1e-8 --json curve.json
"""
import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

import samplenet  # noqa: F401  (first: TensorFlow starts quietly)
import keras
from samplenet import audio
from samplenet.data import from_spec, training_dataset
from samplenet import config as schema
from samplenet.training.optimizers import make_optimizer

SECONDS_SKIPPED_AT_START = 5.0  # intros are often silent


# --------------------------------------------------------------------------- prepare
def _package(path, corpus):
    return path.relative_to(corpus).parts[0]


def _ordered_round_robin(paths, corpus):
    """``paths`` ordered by the SHA-256 of their name within each package, taken one package
    at a time in turn (so that a few files come from several packages)."""
    by_package = {}
    for path in sorted(paths, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest()):
        by_package.setdefault(_package(path, corpus), []).append(path)
    queues = [by_package[name] for name in sorted(by_package)]
    ordered = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def prepare(corpus, out, train_files, heldout_files, train_seconds, heldout_seconds):
    """Write ``out/train`` (``train_files`` excerpts of ``train_seconds``) and ``out/heldout``
    (the next ``heldout_files`` files, excerpts of ``heldout_seconds``) from the WAV files of
    ``corpus``; each excerpt starts ``SECONDS_SKIPPED_AT_START`` into its file. Returns the
    list of ``(split, source file)``."""
    corpus, out = Path(corpus), Path(out)
    ordered = _ordered_round_robin(list(corpus.rglob("*.wav")), corpus)
    if len(ordered) < train_files + heldout_files:
        raise SystemExit(f"error: {corpus} has {len(ordered)} WAV files, fewer than "
                         f"{train_files + heldout_files}")
    chosen = ([("train", path, train_seconds) for path in ordered[:train_files]]
              + [("heldout", path, heldout_seconds)
                 for path in ordered[train_files:train_files + heldout_files]])
    for split, path, seconds in chosen:
        samples = audio.load(path)
        rate = audio.info(path).sample_rate
        start = int(SECONDS_SKIPPED_AT_START * rate)
        audio.save(out / split / f"{_package(path, corpus)}__{path.name}",
                   samples[start:start + int(seconds * rate)], rate)
    return [(split, str(path)) for split, path, _ in chosen]


# --------------------------------------------------------------------------- run
def _config(model_name, sets, data, seed):
    config = schema.apply_overrides(schema.config_for(model_name), sets)
    return schema.apply_overrides(config, [f"data.spec={json.dumps(str(data))}",
                                             f"train.seed={seed}"])


class Curve(keras.callbacks.Callback):
    """Held-out bits per sample after each epoch, and the seconds spent in training steps
    (validation excluded)."""

    def __init__(self):
        super().__init__()
        self.points, self.train_seconds, self._started = [], 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._started is not None:
            self.train_seconds += time.perf_counter() - self._started
            self._started = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        point = {"step": int(self.model.optimizer.iterations.numpy()),
                 "train_seconds": round(self.train_seconds, 1),
                 "train_bits": float(logs.get("bits_per_sample", np.nan)),
                 "heldout_bits": float(logs.get("val_bits_per_sample", np.nan))}
        self.points.append(point)
        print(f"  step {point['step']}: held-out {point['heldout_bits']:.4f} bits "
              f"({self.train_seconds:.0f} s of training)", flush=True)


def run_variant(model_name, sets, data, heldout, steps, eval_every, seed):
    """Train one variant; returns ``{"untrained_bits", "points": [...], "seconds_per_step"}``
    (seconds per step after the first evaluation: the first span includes compiling)."""
    config = _config(model_name, sets, data, seed)
    train = config["train"]
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(train["mixed_precision"] or "float32")
    model = schema.model_from_config(config)
    model.compile(optimizer=make_optimizer(train))
    section = config["data"]
    source = from_spec(data, sample_rate=model.sample_rate, valid_fraction=0.0,
                       test_fraction=0.0, seed=seed)
    held_source = from_spec(heldout, sample_rate=model.sample_rate, valid_fraction=0.0,
                            test_fraction=0.0, seed=seed)
    train_data = training_dataset(model, source, "all", batch_size=train["batch_size"],
                                  seed=seed, **section)
    held_data = training_dataset(model, held_source, "all", batch_size=train["batch_size"],
                                 seed=seed, repeat=False, **section)
    untrained = model.evaluate(held_data, return_dict=True, verbose=0)["bits_per_sample"]
    print(f"  untrained: {untrained:.4f} bits", flush=True)
    curve = Curve()
    model.fit(train_data, epochs=steps // eval_every, steps_per_epoch=eval_every,
              validation_data=held_data, callbacks=[curve],
              verbose=0, shuffle=False)
    first, last = curve.points[0], curve.points[-1]  # the first span includes compiling
    per_step = ((last["train_seconds"] - first["train_seconds"]) / (last["step"] - first["step"])
                if len(curve.points) > 1 else last["train_seconds"] / last["step"])
    return {"untrained_bits": float(untrained), "points": curve.points,
            "seconds_per_step": round(per_step, 3), "config": config}


def run(args):
    out = Path(args.json)
    results = json.loads(out.read_text()) if out.exists() else {"variants": {}}
    results.update({"model": args.model, "sets": args.set, "data": args.data,
                    "heldout": args.heldout, "steps": args.steps,
                    "eval_every": args.eval_every, "seed": args.seed,
                    "command": " ".join(sys.argv)})
    for variant in args.variant:
        name, _, overrides = variant.partition("=")
        if name in results["variants"]:
            print(f"{name}: in {out} already", flush=True)
            continue
        sets = args.set + [item for item in overrides.split(",") if item]
        print(f"{name}: {' '.join(sets)}", flush=True)
        started = time.time()
        result = run_variant(args.model, sets, args.data, args.heldout, args.steps,
                             args.eval_every, args.seed)
        result.update({"overrides": overrides, "wall_seconds": round(time.time() - started)})
        results["variants"][name] = result
        out.write_text(json.dumps(results, indent=1))
    print_table(results)


def print_table(results):
    """A Markdown table: one row per variant, held-out bits at each evaluated step."""
    variants = results["variants"]
    steps = sorted({point["step"] for result in variants.values() for point in result["points"]})
    print("| variant | untrained | " + " | ".join(f"step {s}" for s in steps)
          + " | s/step |")
    print("|---" * (len(steps) + 3) + "|")
    for name, result in variants.items():
        bits = {point["step"]: point["heldout_bits"] for point in result["points"]}
        print(f"| {name} | {result['untrained_bits']:.3f} | "
              + " | ".join(f"{bits[s]:.3f}" if s in bits else "" for s in steps)
              + f" | {result['seconds_per_step']:.2f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="excerpts of a corpus for training and held out")
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train_files", type=int, default=10)
    p.add_argument("--heldout_files", type=int, default=4)
    p.add_argument("--train_seconds", type=float, default=120.0)
    p.add_argument("--heldout_seconds", type=float, default=30.0)
    r = commands.add_parser("run", help="train each variant and evaluate along the way")
    r.add_argument("--data", required=True, help="folder of training files")
    r.add_argument("--heldout", required=True, help="folder of held-out files")
    r.add_argument("--model", default="samplernn_3tier")
    r.add_argument("--set", action="append", default=[], help="override for every variant")
    r.add_argument("--variant", action="append", required=True,
                   help="NAME=key=value[,key=value...] (NAME= for no extra override)")
    r.add_argument("--steps", type=int, default=600)
    r.add_argument("--eval_every", type=int, default=200)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        for split, path in prepare(args.corpus, args.out, args.train_files, args.heldout_files,
                                   args.train_seconds, args.heldout_seconds):
            print(f"{split}: {path}")
    else:
        run(args)


if __name__ == "__main__":
    main()

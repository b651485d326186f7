"""Generate audio with a trained model: ``python generate.py --ckpt runs/<run> --seconds 4``.

Writes ``sample_<i>.wav`` (16-bit PCM at the model's sample rate) for each sequence. The chunks
of ``model.generate_chunks`` are streamed into the files as they come, so memory does not grow
with the length; each file is written under a temporary name and renamed when complete.
"""
import datetime
import sys
from pathlib import Path

import numpy as np
from absl import flags

from samplenet import audio as audio_io
from samplenet import data, loading
from samplenet.analysis import plots
from samplenet.cli.flags import apply_threads, define_ckpt_flag, define_threads_flag, \
    report_errors, run_app

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """Define the flags of ``generate`` on ``flag_values``."""
    define_ckpt_flag(flag_values)
    flags.DEFINE_float("seconds", 4.0, "length of each sequence in seconds",
                       flag_values=flag_values)
    flags.DEFINE_integer("num_seqs", 1, "number of sequences (files)", flag_values=flag_values)
    flags.DEFINE_string("temperature", "1.0", "sampling temperature > 0, or a comma-separated "
                        "list with one per sequence", flag_values=flag_values)
    flags.DEFINE_integer("seed", None, "random seed (default: fresh randomness)",
                         flag_values=flag_values)
    flags.DEFINE_string("prime", None, "audio file whose sound the sequences continue (loaded "
                        "at the model's sample rate)", flag_values=flag_values)
    flags.DEFINE_string("condition", None, "class ids for class-conditioned models: one, or a "
                        "comma-separated list with one per sequence", flag_values=flag_values)
    flags.DEFINE_string("out_dir", None, "output folder (default <run>/samples/generated-<time>)",
                        flag_values=flag_values)
    flags.DEFINE_float("chunk_seconds", 1.0, "audio produced per compiled generation call",
                       flag_values=flag_values)
    flags.DEFINE_boolean("plot", False, "also draw sample_<i>.png: each sequence's waveform and "
                         "log-mel spectrogram beside a training example (needs matplotlib)",
                         flag_values=flag_values)
    define_threads_flag(flag_values, "1 for one sequence, else one per core: a batch-1 "
                        "generation step is a chain of small operations that a second thread "
                        "slows (benchmarks/README.md)")


def generation_threads(threads, num_seqs):
    """TensorFlow threads for generating ``num_seqs`` sequences: ``threads`` if given, else 1
    for a single sequence (1.1-2x faster than two threads at batch 1, every measured model)
    and 0 (one per core) for several (SampleRNN at batch 8-32 is faster on two)."""
    if threads is not None:
        return threads
    return 1 if num_seqs == 1 else 0


def _number_list(name, text, kind, count):
    """A comma list of numbers: one value, or exactly ``count``."""
    try:
        values = [kind(item) for item in text.split(",")]
    except ValueError:
        raise ValueError(f"--{name} must be a number or a comma-separated list, got {text!r}") \
            from None
    if len(values) not in (1, count):
        raise ValueError(f"--{name} has {len(values)} values but --num_seqs is {count}")
    return values[0] if len(values) == 1 else values


def generation_settings(flag_values=FLAGS):
    """Check the numeric flags: ``(temperature, condition)`` as passed to ``generate_chunks``."""
    if not flag_values.seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {flag_values.seconds}")
    if flag_values.num_seqs < 1:
        raise ValueError(f"--num_seqs must be >= 1, got {flag_values.num_seqs}")
    if not flag_values.chunk_seconds > 0:
        raise ValueError(f"--chunk_seconds must be > 0, got {flag_values.chunk_seconds}")
    temperature = _number_list("temperature", flag_values.temperature, float,
                               flag_values.num_seqs)
    if not all(t > 0 for t in np.atleast_1d(temperature)):
        raise ValueError(f"--temperature must be > 0, got {flag_values.temperature!r}")
    condition = None
    if flag_values.condition is not None:
        condition = _number_list("condition", flag_values.condition, int, flag_values.num_seqs)
    return temperature, condition


def _training_source(config, sample_rate):
    """The run's training data for ``--plot``, or None (with a warning) if it is gone."""
    section = config["data"]
    try:
        return data.from_spec(section["spec"], sample_rate=sample_rate,
                              valid_fraction=section["valid_fraction"],
                              test_fraction=section["test_fraction"],
                              seed=config["train"]["seed"])
    except ValueError as error:
        print(f"warning: no training example to plot beside the samples: {error}",
              file=sys.stderr)
        return None


@report_errors
def main(argv):
    temperature, condition = generation_settings()
    apply_threads(generation_threads(FLAGS.threads, FLAGS.num_seqs),
                  explicit=FLAGS["threads"].present)
    if FLAGS.plot:
        plots.require_matplotlib()  # fail before generating, not after
    run, folder, config = loading.locate(FLAGS.ckpt)
    model = loading.model_from_checkpoint(folder, config)
    prime = None
    if FLAGS.prime:
        prime = audio_io.load(FLAGS.prime, sample_rate=model.sample_rate)[None, :]
    out_dir = Path(FLAGS.out_dir or run.samples /
                   f"generated-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot create the output folder {str(out_dir)!r}: "
                      f"{error.strerror or error}") from None
    paths = [out_dir / f"sample_{index}.wav" for index in range(FLAGS.num_seqs)]
    chunks = model.generate_chunks(max(1, round(FLAGS.seconds * model.sample_rate)),
                                   batch_size=FLAGS.num_seqs, temperature=temperature,
                                   seed=FLAGS.seed, prime=prime, condition=condition,
                                   chunk_samples=max(1, round(FLAGS.chunk_seconds
                                                              * model.sample_rate)))
    try:
        num_samples = audio_io.stream_to_wavs((audio for _, audio in chunks), paths,
                                              model.sample_rate)
    except NotImplementedError as error:  # e.g. a codec: nothing to sample from
        raise ValueError(f"{folder} holds a {model.family!r} model: {error}") from None
    print(f"wrote {len(paths)} file(s) of {num_samples / model.sample_rate:.2f} s at "
          f"{model.sample_rate} Hz from {folder} to {out_dir}:", flush=True)
    for path in paths:
        print(f"  {path}")
    if FLAGS.plot:
        figures = plots.compare_with_training(paths, model.sample_rate,
                                              _training_source(config, model.sample_rate))
        print("figures:")
        for path in figures:
            print(f"  {path}")


def run():
    """Entry point of ``generate.py`` and ``samplenet-generate``."""
    run_app(main, define_flags)

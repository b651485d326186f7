"""The codec command line.

    python -m samplenet.codec encode --ckpt RUN in.wav codes.npz [--bitrate KBPS]
    python -m samplenet.codec decode --ckpt RUN codes.npz out.wav
    python -m samplenet.codec evaluate --ckpt RUN [--data SPEC] [--split test] [--bitrate KBPS] [--json]
"""
import json
import sys

from absl import flags

from samplenet import codec_files, data, loading
from samplenet.cli.flags import define_ckpt_flag, run_app

FLAGS = flags.FLAGS
COMMANDS = {"encode": 2, "decode": 2, "evaluate": 0}  # command -> number of paths


def define_flags(flag_values=FLAGS):
    """Define the flags of ``codec`` on ``flag_values``."""
    define_ckpt_flag(flag_values, "a codec run directory or a checkpoint folder in one")
    flags.DEFINE_float("bitrate", None, "kbit/s: use the most codebooks within it (default all)",
                       flag_values=flag_values)
    flags.DEFINE_float("chunk_seconds", 10.0, "audio per streamed chunk", flag_values=flag_values)
    flags.DEFINE_string("data", None, "evaluate: source spec (default the run's data)",
                        flag_values=flag_values)
    flags.DEFINE_string("split", None, "evaluate: split (default test, or all with --data)",
                        flag_values=flag_values)
    flags.DEFINE_boolean("json", False, "evaluate: print JSON", flag_values=flag_values)


def _load_codec(path):
    _, folder, config = loading.locate(path)
    model = loading.model_from_checkpoint(folder, config)
    if model.kind != "codec":
        raise ValueError(f"{str(folder)!r} holds a {model.family!r} model, not a codec")
    return model, config


def _run(command, paths):
    model, config = _load_codec(FLAGS.ckpt)
    if command == "encode":
        num_quantizers, frames = codec_files.encode_file(
            model, paths[0], paths[1], bitrate_kbps=FLAGS.bitrate,
            chunk_seconds=FLAGS.chunk_seconds)
        print(f"wrote {paths[1]}: {num_quantizers} x {frames} codes, "
              f"{model.bitrate_kbps(num_quantizers):g} kbps")
    elif command == "decode":
        num_samples = codec_files.decode_file(model, paths[0], paths[1],
                                              chunk_seconds=FLAGS.chunk_seconds)
        print(f"wrote {paths[1]}: {num_samples / model.sample_rate:.2f} s at "
              f"{model.sample_rate} Hz")
    else:
        split = FLAGS.split or ("all" if FLAGS.data else "test")
        section = config["data"]
        source = data.from_spec(FLAGS.data or section["spec"], sample_rate=model.sample_rate,
                                valid_fraction=section["valid_fraction"],
                                test_fraction=section["test_fraction"],
                                seed=config["train"]["seed"])
        report = codec_files.evaluate_source(model, source, split, bitrate_kbps=FLAGS.bitrate)
        if FLAGS.json:
            print(json.dumps(report, sort_keys=True))
        else:
            for key, value in report.items():
                print(f"{key:>16}: {value if not isinstance(value, float) else f'{value:.4f}'}")


def main(argv):
    words = argv[1:]
    if not words or words[0] not in COMMANDS or len(words) - 1 != COMMANDS[words[0]]:
        usage = "; ".join(f"{name} {' '.join(['PATH'] * count)}".strip()
                          for name, count in COMMANDS.items())
        print(f"error: expected one of: {usage} (got {' '.join(words) or 'nothing'})",
              file=sys.stderr)
        return 2
    try:
        _run(words[0], words[1:])
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def run():
    """Entry point of ``python -m samplenet.codec`` and ``samplenet-codec``."""
    run_app(main, define_flags)

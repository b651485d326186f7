"""Analyse data or a model: ``python -m samplenet.analyze --data SPEC [--json] [--plots DIR]
[--suggest FAMILY --out FILE]`` or ``python -m samplenet.analyze --model PRESET [--set k=v]
[--json]``.

With ``--data`` it prints the dataset report (files, durations, formats, levels, spectrum,
correlation length), with ``--suggest`` a suggested config and its reasons (``--out`` writes
it for ``train.py --config``), with ``--plots`` it draws figures. With ``--model`` it prints
the model report (parameters per layer, depth, receptive field, FLOPs per sample, memory).
``--json`` prints one JSON object instead of text. Errors are one line on stderr.
"""
import json

from absl import flags

from samplenet.analysis.dataset import DEFAULT_CORRELATION_SECONDS, analyze_dataset
from samplenet.cli.flags import report_errors, run_app
from samplenet.data import SPLITS, from_spec

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """Define the flags of ``analyze`` on ``flag_values``."""
    def define(kind, name, default, *args, **kwargs):
        getattr(flags, f"DEFINE_{kind}")(name, default, *args, flag_values=flag_values, **kwargs)

    define("string", "data", None, "data to analyse: a folder of audio files or "
           "builtin:NAME[?key=value&...]")
    define("string", "model", None, "preset or model family to analyse")
    define("multi_string", "set", [], "override key=value for --model, or on top of the "
           "--suggest config (value parsed as JSON); repeatable")
    define("boolean", "json", False, "print one JSON object instead of text")
    define("string", "plots", None, "with --data: folder to draw PNG figures into")
    define("string", "suggest", None, "with --data: suggest a config of this family "
           "(samplernn, wavenet or linear_ar)")
    define("string", "preset", None, "with --suggest: the preset to start from (default: the "
           "family's main preset)")
    define("string", "out", None, "with --suggest: write the config JSON here")
    define("float", "memory_gb", 4.0, "with --suggest: training memory budget in GiB for the "
           "batch size")
    define("enum", "split", "all", sorted(SPLITS), "with --data: the split to analyse")
    define("integer", "max_files", None, "with --data: analyse at most this many files",
           lower_bound=1)
    define("float", "correlation_seconds", DEFAULT_CORRELATION_SECONDS, "with --data: the "
           "longest excerpt per file for the autocorrelation and the spectrum")
    define("integer", "batch_size", None, "with --model: batch of the activation-memory "
           "estimate (default: the preset's)", lower_bound=1)
    define("integer", "seq_len", None, "with --model: samples per training sequence of the "
           "estimate (default: the model's)", lower_bound=1)
    define("boolean", "measure", True, "with --model: confirm the receptive field by "
           "gradients (takes ~20 s for the full wavenet preset)")


def _check_combination():
    if bool(FLAGS.data) == bool(FLAGS.model):
        raise ValueError("give either --data SPEC (a dataset) or --model PRESET (a model)")
    data_only = [name for name in ("plots", "suggest", "out", "preset")
                 if FLAGS[name].value is not None]
    if FLAGS.model and data_only:
        raise ValueError(f"--{', --'.join(data_only)} go with --data, not --model")
    if FLAGS.data and not FLAGS.suggest:
        extra = [name for name in ("out", "preset") if FLAGS[name].value is not None]
        if FLAGS.set:
            extra.append("set")
        if extra:
            raise ValueError(f"--{', --'.join(extra)} only go with --data when --suggest "
                             f"FAMILY is given")
    if not FLAGS.memory_gb > 0:
        raise ValueError(f"--memory_gb must be > 0, got {FLAGS.memory_gb}")


def _model():
    from samplenet.analysis.model import analyze_model
    report = analyze_model(FLAGS.model, FLAGS.set, batch_size=FLAGS.batch_size,
                           seq_len=FLAGS.seq_len, measure=FLAGS.measure)
    return report.to_dict(), [str(report)]


def _data():
    # Fail on a bad family or missing matplotlib before the analysis, not after it.
    if FLAGS.suggest:
        from samplenet.analysis.suggest import check_family
        check_family(FLAGS.suggest)
    if FLAGS.plots:
        from samplenet.analysis.plots import require_matplotlib
        require_matplotlib()
    source = from_spec(FLAGS.data)
    report = analyze_dataset(source, split=FLAGS.split, max_files=FLAGS.max_files,
                             correlation_seconds=FLAGS.correlation_seconds)
    out, text = report.to_dict(), [str(report)]
    if FLAGS.suggest:
        from samplenet.analysis.suggest import suggest_config
        suggestion = suggest_config(report, FLAGS.suggest, preset=FLAGS.preset,
                                    overrides=FLAGS.set, memory_bytes=FLAGS.memory_gb * 2 ** 30)
        out["suggestion"] = suggestion.to_dict()
        text += ["", str(suggestion)]
        if FLAGS.out:
            path = suggestion.write(FLAGS.out)
            out["suggestion"]["config_file"] = str(path)
            text.append(f"wrote {path}; train with: python train.py --config {path}")
    if FLAGS.plots:
        from samplenet.analysis.plots import dataset_figures
        paths = dataset_figures(report, source, FLAGS.plots)
        out["figures"] = [str(path) for path in paths]
        text += ["", "figures:"] + [f"  {path}" for path in paths]
    return out, text


@report_errors
def main(argv):
    _check_combination()
    out, text = _model() if FLAGS.model else _data()
    print(json.dumps(out, indent=2) if FLAGS.json else "\n".join(text), flush=True)


def run():
    """Entry point of ``python -m samplenet.analyze`` and ``samplenet-analyze``."""
    run_app(main, define_flags)


if __name__ == "__main__":
    run()

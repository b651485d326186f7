"""Export a trained model for serving: ``python -m samplenet.export --ckpt runs/<run> --out DIR``.

Writes a TensorFlow SavedModel (usable with TensorFlow alone) and ``DIR/samplenet.json``; see
``samplenet.export`` for the signatures.
"""
from absl import flags

from samplenet import export as export_lib
from samplenet import loading
from samplenet.cli.flags import define_ckpt_flag, report_errors, run_app

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """Define the flags of ``export`` on ``flag_values``."""
    define_ckpt_flag(flag_values)
    flags.DEFINE_string("out", None, "output folder of the SavedModel (must not exist, or be "
                        "empty)", flag_values=flag_values)
    flags.mark_flag_as_required("out", flag_values=flag_values)


@report_errors
def main(argv):
    export_lib.check_out_dir(FLAGS.out)  # fail before loading anything
    _, folder, config = loading.locate(FLAGS.ckpt)
    model = loading.model_from_checkpoint(folder, config)
    out_dir = export_lib.export(model, FLAGS.out)
    signatures = ", ".join(export_lib.read_manifest(out_dir)["signatures"])
    print(f"exported the {model.family!r} model of {folder} to {out_dir} "
          f"(signatures: {signatures}; units in {out_dir / export_lib.MANIFEST})")


def run():
    """Entry point of ``python -m samplenet.export`` and ``samplenet-export``."""
    run_app(main, define_flags)

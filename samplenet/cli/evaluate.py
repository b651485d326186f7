"""Evaluate a trained model: ``python -m samplenet.evaluate --ckpt runs/<run> [--data held_out/]``.

Prints the test negative log-likelihood in bits per sample (and the model's other metrics) as
text, or as one JSON object with ``--json``. Without ``--data`` it evaluates the run's own data
on the held-out ``test`` split; with ``--data`` every file of that source (split ``all``) unless
``--split`` is given.
"""
import json

from absl import flags

from samplenet import data, loading
from samplenet.cli.flags import define_ckpt_flag, report_errors, run_app
from samplenet.training import trainer

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """Define the flags of ``evaluate`` on ``flag_values``."""
    define_ckpt_flag(flag_values)
    flags.DEFINE_string("data", None, "data to evaluate on: a folder or builtin:NAME[?...] "
                        "(default: the run's data.spec)", flag_values=flag_values)
    flags.DEFINE_enum("split", None, sorted(data.SPLITS), "split of the data (default: test for "
                      "the run's data, all for --data)", flag_values=flag_values)
    flags.DEFINE_boolean("json", False, "print one JSON object instead of text",
                         flag_values=flag_values)
    flags.DEFINE_integer("batch_size", None, "batch size (default: the run's train.batch_size)",
                         lower_bound=1, flag_values=flag_values)


def report(results, split, folder):
    """The printed dict: ``bits_per_sample``, ``loss_nats``, ``accuracy`` when present, the
    model's other metrics, ``num_files``, ``split`` and ``checkpoint``."""
    results = dict(results)
    out = {}
    if "bits_per_sample" in results:
        out["bits_per_sample"] = results.pop("bits_per_sample")
    if "loss" in results:
        out["loss_nats"] = results.pop("loss")
    out.update(results)
    out.update(split=split, checkpoint=str(folder))
    return out


@report_errors
def main(argv):
    _, folder, config = loading.locate(FLAGS.ckpt)
    model = loading.model_from_checkpoint(folder, config)
    split = FLAGS.split or ("all" if FLAGS.data else "test")
    results = trainer.evaluate(model, config, split=split, data_spec=FLAGS.data,
                               batch_size=FLAGS.batch_size)
    out = report(results, split, folder)
    if FLAGS.json:
        print(json.dumps(out, sort_keys=True))
        return
    print(f"checkpoint: {out.pop('checkpoint')}")
    print(f"data: {FLAGS.data or config['data']['spec']} (split {out.pop('split')}, "
          f"{out.pop('num_files')} files)")
    for name, value in out.items():
        print(f"{name}: {value:.4f}")


def run():
    """Entry point of ``python -m samplenet.evaluate`` and ``samplenet-evaluate``."""
    run_app(main, define_flags)

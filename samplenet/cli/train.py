"""Train a model: ``python train.py --model samplernn_3tier [--data my_audio/] [--set k=v]``.

The config is a preset (``--model``, see ``configs/``), a JSON file (``--config``) or, with
``--resume``, the run's own ``config.json``; ``--set key=value`` overrides it (repeatable), then
``--data`` and the training flags given explicitly override its data and train sections. Prints
the run directory at the start and at the end with the final bits per sample.
"""
import sys
from pathlib import Path

from absl import flags

from samplenet import devices
from samplenet.cli.flags import report_errors, run_app
from samplenet import config as schema
from samplenet.training import trainer
from samplenet.training.checkpoints import POLICIES
from samplenet.training.run_dir import RunDir, default_logdir
from samplenet.training.strategy import STRATEGIES, WorkerLost

FLAGS = flags.FLAGS
# Strategies under which the program evaluates the run on the test split at the end (one
# process; a multi-worker or TPU run is evaluated with samplenet.evaluate).
LOCAL_STRATEGIES = frozenset({"default", "mirrored"})
# Flags that override the train section of the config when given on the command line.
TRAIN_FLAGS = ("epochs", "steps_per_epoch", "batch_size", "checkpoint_policy",
               "checkpoint_every", "early_stopping_patience", "seed")


def define_flags(flag_values=FLAGS):
    """Define the flags of ``train`` on ``flag_values``."""
    flags.DEFINE_string("model", "samplernn_3tier_cpu",
                        f"preset ({', '.join(schema.preset_names())}) or model family",
                        flag_values=flag_values)
    flags.DEFINE_string("config", None, "a config JSON file, instead of --model",
                        flag_values=flag_values)
    flags.DEFINE_multi_string("set", [], "override key=value (value parsed as JSON); keys are "
                              "model arguments or data.KEY / train.KEY (codecs: also "
                              "codec_loss.KEY); repeatable",
                              flag_values=flag_values)
    flags.DEFINE_string("data", None, "training data: a folder of audio files or "
                        "builtin:NAME[?key=value&...] (default: the config's data.spec, "
                        f"{schema.DATA_DEFAULTS['spec']} in the presets)",
                        flag_values=flag_values)
    flags.DEFINE_string("logdir", None, "run directory (default runs/<preset or family>-<time>)",
                        flag_values=flag_values)
    flags.DEFINE_boolean("resume", False, "continue the run in --logdir from its latest "
                         "checkpoint (weights, optimizer state, epoch)", flag_values=flag_values)
    for name, text in (("epochs", "total epochs of the run"),
                       ("steps_per_epoch", "batches per epoch"),
                       ("batch_size", "global batch size"),
                       ("checkpoint_every", "epochs between checkpoints"),
                       ("early_stopping_patience", "epochs without improvement before stopping, "
                        "0 = never stop early"),
                       ("seed", "random seed")):
        flags.DEFINE_integer(name, None, f"{text} (default: the config's train.{name})",
                             lower_bound=0 if name in ("seed", "early_stopping_patience") else 1,
                             flag_values=flag_values)
    flags.DEFINE_enum("checkpoint_policy", None, sorted(POLICIES),
                      "keep every checkpoint, or only the latest and the best (default: the "
                      "config's train.checkpoint_policy)", flag_values=flag_values)
    flags.DEFINE_enum("strategy", "default", sorted(STRATEGIES),
                      "distribution: one device, all local GPUs, several machines (TF_CONFIG), "
                      "or a TPU", flag_values=flag_values)
    flags.DEFINE_integer("verbose", 1, "progress output: 0 silent, 1 progress bar, 2 one line "
                         "per epoch", lower_bound=0, upper_bound=2, flag_values=flag_values)


def build_config(flag_values=FLAGS):
    """``(config, name)``: the resolved config the flags describe and the name for a default
    run directory (the preset, or the family)."""
    if flag_values["config"].present and flag_values["model"].present:
        raise ValueError("give --model or --config, not both")
    if flag_values["config"].present:
        config = schema.resolve(schema.load_config_file(flag_values.config))
        name = config["family"]
    elif (flag_values.resume and flag_values.logdir and not flag_values["model"].present):
        config = schema.resolve(RunDir(flag_values.logdir).read_config())
        name = None
    else:
        config = schema.config_for(flag_values.model)
        name = flag_values.model
    config = schema.apply_overrides(config, flag_values.set)
    explicit = {f"train.{key}": flag_values[key].value for key in TRAIN_FLAGS
                if flag_values[key].present}
    if flag_values["data"].present:
        explicit["data.spec"] = flag_values.data
    return schema.apply_overrides(config, explicit), name


# What the end of a run compares between a CPU-sized preset and its full-size preset.
SIZE_KEYS = ("dim", "num_rnn_layers", "emb_size", "seq_len", "train.batch_size", "train.epochs",
             "train.steps_per_epoch")


def size_notes(name, config, has_gpu):
    """``(before, after)``: a warning to print before training the full-size preset ``name``
    on a machine without a GPU when a CPU-sized one exists, and a note to print after training
    a CPU-sized preset on how to train the full-size one; each None when it does not apply."""
    cpu_preset, full_preset = schema.cpu_sized_preset(name), schema.full_size_preset(name)
    before = after = None
    if cpu_preset and not has_gpu:
        before = (f"warning: {name} is the full-size model, meant for a GPU (an epoch takes hours "
                  f"on a CPU); {cpu_preset} is sized to train in minutes here: python train.py "
                  f"--model {cpu_preset}")
    if full_preset:
        full = schema.config_for(full_preset)
        changes = ", ".join(schema.differences(config, full, [
            key for key in SIZE_KEYS if "." in key or key in config]))
        after = (f"{name} is {full_preset} sized for a CPU ({changes}; {full_preset}'s values "
                 f"in brackets). The full-size model, for a GPU (docs/gpu.md): python train.py "
                 f"--model {full_preset}")
    return before, after


def print_test_results(logdir):
    """Print the test split's metric for the run's best checkpoint against an untrained model's
    (or why there is none)."""
    try:
        trained, untrained = trainer.evaluate_run(logdir, "test")
    except ValueError as error:
        print(f"no test figures: {error}", flush=True)
        return
    metric = "bits_per_sample" if "bits_per_sample" in trained else "loss"
    print(f"test {metric.replace('_', ' ')} ({trained['num_files']} files): "
          f"{trained[metric]:.4f}; untrained model: {untrained[metric]:.4f}", flush=True)


@report_errors
def main(argv):
    config, name = build_config()
    if FLAGS.resume and not FLAGS.logdir:
        raise ValueError("--resume needs --logdir, the run directory to continue")
    logdir = FLAGS.logdir or default_logdir(name or config["family"])
    print(f"run directory: {logdir}", flush=True)
    print(f"device: {devices.describe()}", flush=True)
    before, after = size_notes(name, config, has_gpu=bool(devices.gpu_names()))
    try:
        history = trainer.train(config, logdir, resume=FLAGS.resume, strategy=FLAGS.strategy,
                                verbose=FLAGS.verbose,
                                before_fit=(lambda: print(before, file=sys.stderr, flush=True))
                                if before else None)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue from the last checkpoint with: python train.py "
              f"--resume --logdir {logdir}", file=sys.stderr)
        return 130
    except WorkerLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metric = "bits_per_sample" if "bits_per_sample" in history else "loss"
    results = [f"{label} {history[key][-1]:.4f}"
               for label, key in (("train", metric), ("valid", f"val_{metric}"))
               if history.get(key)]
    print(f"finished: {Path(logdir)}; final {metric.replace('_', ' ')}: {', '.join(results)}",
          flush=True)
    if FLAGS.strategy in LOCAL_STRATEGIES:
        print_test_results(logdir)
    if after:
        print(after, flush=True)


def run():
    """Entry point of ``train.py`` and ``samplenet-train``."""
    run_app(main, define_flags)

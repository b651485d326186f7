"""One training run: config -> run directory with checkpoints, logs and samples.

``train(config, run_dir)`` builds the data source, the model (inside the distribution
strategy's scope), the optimizer and the tf.data pipelines, and runs ``model.fit`` with the
callbacks of ``samplenet.training.callbacks``. A codec (``model.kind == "codec"``) is fitted and
evaluated inside its ``CodecTraining`` (``samplenet.training.codec_training``: the config's
``codec_loss`` objective, the discriminator, the metrics); its checkpoints still load as the
plain codec. With ``resume=True`` it continues the run from
its latest checkpoint: weights, optimizer state (including the step count), epoch and data
position (the training pipeline skips the batches already consumed, so a run resumed any number
of times sees the batches, and ends with the weights, of an uninterrupted one; SampleRNN's
carried TBPTT state restarts from the learned initial state at a resume).
"""
import logging
import math
import warnings

import keras
import tensorflow as tf

from samplenet import data, loading
from samplenet.data import pipelines
from samplenet import config as schema
from samplenet.training import checkpoints
from samplenet.training.callbacks import make_callbacks, optimizer_step
from samplenet.training.codec_training import SECTION as CODEC_SECTION, CodecTraining
from samplenet.training.optimizers import make_optimizer
from samplenet.training.run_dir import RunDir
from samplenet.training.strategy import (is_chief, is_distributed, lost_worker_errors,
                                        make_strategy)

_logger = logging.getLogger(__name__)
PRECISIONS = frozenset({"", "mixed_bfloat16", "mixed_float16"})
# Train keys that may change when a run is resumed: how long and how it is logged, not what
# is learned.
RESUMABLE_TRAIN_KEYS = frozenset({
    "epochs", "steps_per_epoch", "validation_steps", "early_stopping_patience",
    "checkpoint_every", "checkpoint_policy", "generate_every", "generate_seconds",
    "jit_compile"})


_FRESH_STATE = {"epoch": 0, "best_value": math.inf, "elapsed_seconds": 0.0,
                "data_position": {"train_steps": 0}}


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the message names the step and the last good
    checkpoint."""


def _flatten(config):
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{name}": item for name, item in value.items()})
        else:
            flat[key] = value
    return flat


def check_resume_config(saved, config, where):
    """``ValueError`` listing the keys in which ``config`` differs from the run's ``saved``
    config (both resolved), apart from ``RESUMABLE_TRAIN_KEYS``."""
    saved, config = _flatten(schema.resolve(saved)), _flatten(config)
    differences = [f"{key}: {saved.get(key)!r} in the run, {config.get(key)!r} now"
                   for key in sorted(set(saved) | set(config))
                   if saved.get(key) != config.get(key)
                   and key.removeprefix("train.") not in RESUMABLE_TRAIN_KEYS]
    if differences:
        raise ValueError(f"cannot resume {str(where)!r} with a different config ("
                         f"{'; '.join(differences)}); resume with the run's own config or start "
                         "a new run directory")


def _source(config, model, spec=None):
    """The source of ``spec`` (default: the config's ``data.spec``) at ``model``'s sample rate,
    with the config's splits; truncated files shorter than one of ``model``'s examples are
    skipped."""
    section = config["data"]
    return data.from_spec(
        spec or section["spec"], sample_rate=model.sample_rate,
        valid_fraction=section["valid_fraction"], test_fraction=section["test_fraction"],
        seed=config["train"]["seed"],
        example_seconds=pipelines.example_seconds(model, model.sample_rate, **section))


def _dataset(strategy, model, source, split, config, steps_done=0):
    """The repeated pipeline of ``split``, split per replica/worker when distributed, starting
    after the batches of its first ``steps_done`` optimizer steps (the data position of a resumed
    run: the pipelines are deterministic for a seed, so a resumed run sees the batches an
    uninterrupted one would). Each worker's pipeline feeds one batch per local replica a step."""
    batch_size = config["train"]["batch_size"]

    def make(input_context=None):
        dataset = pipelines.training_dataset(model, source, split, batch_size=batch_size,
                                             seed=config["train"]["seed"], repeat=True,
                                             input_context=input_context, **config["data"])
        local_replicas = (input_context.num_replicas_in_sync // input_context.num_input_pipelines
                          if input_context is not None else 1)
        return dataset.skip(steps_done * local_replicas) if steps_done else dataset

    if is_distributed(strategy):
        return strategy.distribute_datasets_from_function(
            lambda input_context: make(input_context).map(_bools_as_int32))
    return make()


def _bools_as_int32(elements):
    """Bool tensors (SampleRNN's ``reset``) as int32 in distributed input: Keras's ``fit`` and
    ``evaluate`` average the first distributed batch across replicas, which fails on bools; the
    models cast ``reset`` back to bool."""
    return {key: tf.cast(value, tf.int32) if value.dtype == tf.bool else value
            for key, value in elements.items()}


def training_model(model, config, *, adversarial=True):
    """What ``fit`` trains (and ``evaluate`` runs) for ``model``, built from the resolved
    ``config``: a codec inside its ``CodecTraining`` with the config's ``codec_loss`` settings
    (without the adversarial terms unless ``adversarial``), any other model itself."""
    if model.kind != "codec":
        return model
    settings = config[CODEC_SECTION]
    return CodecTraining(model, **{**settings, "adversarial": adversarial and
                                   settings["adversarial"]})


def _set_precision(name):
    if name not in PRECISIONS:
        raise ValueError(f"train.mixed_precision must be one of {sorted(PRECISIONS)}, "
                         f"got {name!r}")
    keras.mixed_precision.set_global_policy(name or "float32")


def _resume(run, model, optimizer):
    """Restore the run's latest checkpoint into ``model`` (a model or its ``CodecTraining``)
    and ``optimizer``, if there is one: its ``state.json`` dict with the keys
    ``epoch``, ``best_value``, ``elapsed_seconds`` and ``data_position`` filled in (a fresh
    run's values when there is no checkpoint yet)."""
    latest = checkpoints.latest_checkpoint(run.checkpoints)
    if latest is None:
        _logger.warning("%s has no checkpoint yet; starting from epoch 0", run)
        return _FRESH_STATE
    state = checkpoints.restore(model, optimizer, latest)
    best = checkpoints.best_checkpoint(run.checkpoints)
    best_value = checkpoints.read_state(best).get("monitored_value", math.inf) if best else \
        math.inf
    _logger.info("resumed %s at epoch %d, optimizer step %d", latest, state["epoch"],
                 optimizer_step(optimizer))
    # Checkpoints written before the data position was recorded: one batch per optimizer step.
    position = state.get("data_position") or {"train_steps": state["step"]}
    return {**_FRESH_STATE, **state, "best_value": best_value, "data_position": position}


def train(config, run_dir, *, resume=False, strategy="default", epochs=None,
          steps_per_epoch=None, verbose=1, before_fit=None):
    """Train the model ``config`` describes, writing the run directory ``run_dir``.

    Args:
      config: a config dict (``schema.resolve``d here).
      run_dir: the run directory (created; see ``samplenet.training.run_dir``).
      resume: continue from the run's latest checkpoint (its config.json must match ``config``
        except for ``RESUMABLE_TRAIN_KEYS``). Without it, a folder that already has
        checkpoints is an error.
      strategy: a name of ``strategy.STRATEGIES`` or a ``tf.distribute.Strategy``.
      epochs: total epochs of the run (overrides ``train.epochs``; a resumed run continues up
        to this count).
      steps_per_epoch: overrides ``train.steps_per_epoch``.
      verbose: Keras progress output (0 silent, 1 progress bar, 2 one line per epoch).
      before_fit: None, or a function of no arguments called once the config, the model and
        the data have passed their checks, just before the first step (programs print their
        notes on the run there, so that a bad config shows only its error).
    Returns:
      ``{metric: [value per epoch of this session]}`` (Keras ``History.history``).
    Raises:
      ValueError for a bad config, a config mismatch on resume, or nothing left to train;
      ``TrainingDiverged`` when the loss became NaN or infinite (the run directory keeps the
      last good checkpoint); ``strategy.WorkerLost`` when a worker of a multi-worker run is
      gone (restart every worker with ``resume=True``).
    """
    config = schema.resolve(config)
    for key, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if value is not None:
            config["train"][key] = value
    section = config["train"]
    for key in ("epochs", "steps_per_epoch", "batch_size", "validation_steps"):
        if section[key] < 1:
            raise ValueError(f"train.{key} must be >= 1, got {section[key]!r}")
    run = RunDir(run_dir)
    if resume:
        check_resume_config(run.read_config(), config, run)
    elif checkpoints.latest_checkpoint(run.checkpoints) is not None:
        raise ValueError(f"{str(run)!r} already holds checkpoints; pass --resume (resume=True) "
                         "to continue that run, or choose another run directory")
    if isinstance(strategy, str):
        strategy = make_strategy(strategy)
    chief = is_chief(strategy)

    keras.utils.set_random_seed(section["seed"])
    _set_precision(section["mixed_precision"])
    with strategy.scope():
        model = schema.model_from_config(config)
        trainee = training_model(model, config)
        optimizer = make_optimizer(section)
        trainee.compile(optimizer=optimizer, jit_compile=section["jit_compile"])
        model.ensure_built()
        optimizer.build(trainee.trainable_variables)
    state = _resume(run, trainee, optimizer) if resume else _FRESH_STATE
    initial_epoch, position = state["epoch"], state["data_position"]
    if initial_epoch >= section["epochs"]:
        raise ValueError(f"{str(run)!r} has already trained {initial_epoch} epochs; ask for more "
                         f"(train.epochs / --epochs > {initial_epoch})")
    source = _source(config, model)  # bad data fails before the run dir is made
    train_data = _dataset(strategy, model, source, "train", config, position["train_steps"])
    valid_data = None
    if source.examples("valid"):
        try:
            valid_data = _dataset(strategy, model, source, "valid", config)
        except pipelines.UnusableSplit as error:  # a few bad files: train on the rest
            _logger.warning("%s; training without validation", error)
    else:
        _logger.warning("the valid split of %s is empty; training without validation",
                        source.name)
    has_validation = valid_data is not None
    if chief:
        run.create()
        run.write_config(config)
    callbacks, guard = make_callbacks(run, section, sample_rate=model.sample_rate,
                                      has_validation=has_validation, is_chief=chief,
                                      best_value=state["best_value"],
                                      elapsed_seconds=state["elapsed_seconds"],
                                      train_steps=position["train_steps"])
    callbacks += trainee.training_callbacks()
    if before_fit is not None:
        before_fit()
    with lost_worker_errors(strategy, run):  # a lost peer: WorkerLost, not a hang or trace
        history = trainee.fit(
            train_data, epochs=section["epochs"], steps_per_epoch=section["steps_per_epoch"],
            validation_data=valid_data,
            validation_steps=section["validation_steps"] if has_validation else None,
            initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose,
            shuffle=False)  # the pipelines shuffle
    if guard.message is not None:
        latest = checkpoints.latest_checkpoint(run.checkpoints)
        raise TrainingDiverged(f"{guard.message}; the last good checkpoint is "
                               f"{str(latest) if latest else 'none (no epoch completed)'}")
    return history.history


def evaluate_run(run_dir, split="test"):
    """Metrics (``evaluate``) of a run's best (else latest) checkpoint on ``split``, and of an
    untrained model of the same config initialised with the run's seed: ``(trained,
    untrained)``. ``ValueError`` when the split has no files."""
    _, folder, config = loading.locate(run_dir)
    trained = evaluate(loading.model_from_checkpoint(folder, config), config, split=split)
    keras.utils.set_random_seed(config["train"]["seed"])
    untrained = evaluate(schema.model_from_config(config), config, split=split)
    return trained, untrained


def evaluate(model, config, *, split="test", data_spec=None, batch_size=None, verbose=0):
    """Evaluate a trained ``model`` on one split of its data, every file once.

    Args:
      model: a built model with its weights (e.g. ``samplenet.load_model(run)``).
      config: the run's resolved config (its data section and seed define the splits).
      split: "train", "valid", "test" or "all".
      data_spec: another source spec (a held-out folder); None uses ``config["data"]["spec"]``.
      batch_size: None uses ``train.batch_size``.
    Returns:
      The metrics of ``model.evaluate`` (``loss`` in nats, ``bits_per_sample``, ...) plus
      ``num_files``. A codec reports its ``CodecTraining`` metrics without the adversarial
      terms (``loss`` then leaves them out; the run's discriminator is not part of the model).
    Raises ``ValueError`` when the split has no files.
    """
    section = config["data"]
    source = _source(config, model, data_spec)
    num_files = len(source.examples(split))
    if not num_files:
        raise ValueError(f"the {split!r} split of {source.name!r} has no files")
    batch_size = batch_size or config["train"]["batch_size"]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    dataset = pipelines.training_dataset(model, source, split, batch_size=batch_size,
                                         seed=config["train"]["seed"], repeat=False, **section)
    # The run's discriminator is training state, which a loaded codec does not carry.
    examinee = training_model(model, config, adversarial=False)
    if not examinee.compiled:
        examinee.compile()
    with warnings.catch_warnings():  # a finite pipeline of unknown length ends as it should
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        results = examinee.evaluate(dataset, return_dict=True, verbose=verbose)
    return {**{name: float(value) for name, value in results.items()}, "num_files": num_files}

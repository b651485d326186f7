"""Atomic, self-describing checkpoints inside a run directory.

``checkpoints/ckpt-<epoch:05d>/`` holds ``ckpt.index`` + ``ckpt.data-*`` (a
``tf.train.Checkpoint`` of the model's weights and the optimizer's variables, and a codec's
discriminator, see ``checkpointed_variables``; no pickles) and ``state.json`` (epoch, optimizer
step, val_loss, train metrics, wall time). A checkpoint is written into a temporary
folder ``checkpoints/.tmp-...`` and renamed into place when complete; the pointer files
``checkpoints/latest`` and ``checkpoints/best`` (folder names, written atomically) only ever
name complete checkpoints, so a run killed at any moment resumes from a whole checkpoint.
"""
import collections
import inspect
import json
import os
import shutil
import uuid
from pathlib import Path

import tensorflow as tf

from samplenet.models.registry import constructor_defaults
from samplenet.training.run_dir import RunDir, atomic_write_text

POLICIES = frozenset({"best", "all"})
STATE_FILE = "state.json"
PREFIX = "ckpt"
LATEST = "latest"
BEST = "best"
_TEMPORARY = ".tmp-"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupted, or does not fit the model; names the folder."""


def folder_name(epoch):
    """``ckpt-<epoch:05d>``."""
    return f"{PREFIX}-{epoch:05d}"


def is_complete(folder):
    """True when ``folder`` holds a finished checkpoint (``state.json`` and the index)."""
    folder = Path(folder)
    return (folder / STATE_FILE).is_file() and (folder / f"{PREFIX}.index").is_file()


def complete_checkpoints(checkpoints_dir):
    """The complete ``ckpt-*`` folders of ``checkpoints_dir``, oldest first (temporary folders
    of interrupted writes are never listed)."""
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob(f"{PREFIX}-*") if is_complete(path))


def _pointed(checkpoints_dir, pointer):
    path = Path(checkpoints_dir) / pointer
    if not path.is_file():
        return None
    try:
        target = Path(checkpoints_dir) / path.read_text(encoding="utf-8").strip()
    except (OSError, ValueError) as error:  # ValueError: not UTF-8 text
        raise CheckpointError(f"cannot read {str(path)!r}: {error}") from None
    if not is_complete(target):
        raise CheckpointError(f"{str(path)!r} names {str(target)!r}, which is missing or "
                              "incomplete")
    return target


def latest_checkpoint(checkpoints_dir):
    """The folder ``checkpoints/latest`` names (or, if the pointer was never written, the newest
    complete checkpoint); ``None`` when there is none."""
    pointed = _pointed(checkpoints_dir, LATEST)
    if pointed is not None:
        return pointed
    found = complete_checkpoints(checkpoints_dir)
    return found[-1] if found else None


def best_checkpoint(checkpoints_dir):
    """The folder ``checkpoints/best`` names, or ``None``."""
    return _pointed(checkpoints_dir, BEST)


def read_state(folder):
    """The ``state.json`` dict of a checkpoint folder."""
    path = Path(folder) / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not UTF-8 or not JSON
        raise CheckpointError(f"cannot read {str(path)!r}: {error}") from None


def trained_model(model):
    """The model whose weights a checkpoint of ``model`` holds under "model": ``model``
    itself, or the model a training wrapper trains (``CodecTraining.trained_model``)."""
    return getattr(model, "trained_model", model)


def weights_by_path(layer):
    """``{Keras path below layer: weight}`` of every weight of ``layer``
    (``frame_tier_0/kernel_0``), the keys any instance of the same configuration shares."""
    weights = {}
    for variable in layer.weights:
        key = variable.path.split("/", 1)[-1]
        if key in weights:
            raise CheckpointError(f"two weights of {type(layer).__name__} share the path {key!r}")
        weights[key] = variable
    return weights


def variables_by_index(optimizer):
    """``{index: variable}`` of an optimizer's variables (step count, learning rate, slots in
    the order of the variables it was built for), keyed by position because their names embed
    the model instance's name."""
    return {f"{index:05d}": variable for index, variable in enumerate(optimizer.variables)}


def checkpointed_variables(model, optimizer=None):
    """What a checkpoint holds: ``{"model": weights_by_path(model), "optimizer":
    variables_by_index(optimizer)}``, plus, for a training wrapper (``CodecTraining``), the
    groups of its ``training_state()`` (the discriminator and its optimizer).

    A wrapper's "model" group is the model it trains (``trained_model``), keyed as that model
    alone, so the checkpoint of a run loads into the plain model. Passing the model itself to
    ``tf.train.Checkpoint`` is not enough under Keras 3: sublayers held in Python lists are not
    tracked by it and would be silently left out.
    """
    objects = {"model": weights_by_path(trained_model(model))}
    if optimizer is not None:
        objects["optimizer"] = variables_by_index(optimizer)
    if trained_model(model) is not model:
        objects.update(model.training_state())
    return objects


def save_checkpoint(checkpoints_dir, model, optimizer, state, *, is_best, policy="best"):
    """Write ``model`` and ``optimizer`` as ``ckpt-<state["epoch"]>`` and update the pointers.

    Args:
      checkpoints_dir: the run's ``checkpoints`` folder (created if missing).
      model, optimizer: what to save (the optimizer holds its step count, ``iterations``).
      state: JSON-serializable dict with at least ``epoch``; saved as ``state.json``.
      is_best: also point ``best`` at this checkpoint.
      policy: ``"all"`` keeps every checkpoint, ``"best"`` only ``latest`` and ``best``.
    Returns the checkpoint folder.
    """
    if policy not in POLICIES:
        raise ValueError(f"checkpoint_policy must be one of {sorted(POLICIES)}, got {policy!r}")
    checkpoints_dir = Path(checkpoints_dir)
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / folder_name(state["epoch"])
    temporary = checkpoints_dir / f"{_TEMPORARY}{final.name}-{uuid.uuid4().hex[:12]}"
    try:
        temporary.mkdir()
        tf.train.Checkpoint(**checkpointed_variables(model, optimizer)).write(
            str(temporary / PREFIX))
        (temporary / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n",
                                            encoding="utf-8")
        if final.exists():  # left by a run killed before it moved `latest` here
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    atomic_write_text(checkpoints_dir / LATEST, final.name + "\n")
    if is_best:
        atomic_write_text(checkpoints_dir / BEST, final.name + "\n")
    _prune(checkpoints_dir, policy, keep=final.name)
    return final


def _prune(checkpoints_dir, policy, keep):
    """Delete leftovers of interrupted writes, and (policy "best") every checkpoint that is
    neither ``latest`` nor ``best``."""
    for leftover in checkpoints_dir.glob(f"{_TEMPORARY}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    if policy != "best":
        return
    best = best_checkpoint(checkpoints_dir)
    keep = {keep, best.name if best is not None else None}
    for folder in checkpoints_dir.glob(f"{PREFIX}-*"):
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def run_config_of(folder):
    """The ``config.json`` of the run that holds checkpoint ``folder`` (two levels up), or
    ``None`` when the checkpoint is not inside a run directory."""
    run = RunDir.of_checkpoint(folder)
    if not run.is_run():
        return None
    try:
        return run.read_config()
    except ValueError as error:  # not UTF-8 or not JSON
        raise CheckpointError(str(error)) from None


def _comparable(value):
    try:
        return json.loads(json.dumps(value))
    except TypeError:
        return repr(value)


def check_compatible(model, run_config, folder):
    """``CheckpointError`` unless ``run_config`` (the checkpoint's run config) describes a model
    of ``model``'s family with the same constructor arguments."""
    if run_config.get("family") != model.family:
        raise CheckpointError(f"checkpoint {str(folder)!r} holds a {run_config.get('family')!r} "
                              f"model, not a {model.family!r} model")
    current = model.get_config()
    differences = []
    for key, default in constructor_defaults(type(model)).items():
        saved = run_config.get(key, default)
        if key not in current or saved is inspect.Parameter.empty:
            continue
        if _comparable(saved) != _comparable(current[key]):
            differences.append(f"{key}={saved!r} in the checkpoint but {current[key]!r} here")
    if differences:
        raise CheckpointError(f"checkpoint {str(folder)!r} was written by a different "
                              f"{model.family!r} configuration: {'; '.join(differences)}")


def restore(model, optimizer, folder):
    """Restore ``model`` (and ``optimizer`` unless ``None``) from checkpoint ``folder``.

    ``model`` is a model or a training wrapper (``CodecTraining``: its codec, discriminator and
    discriminator optimizer are restored). Builds the model (``ensure_built``) and the
    optimizer's slots first, compares the (trained) model with the run's ``config.json`` when
    the checkpoint lives in a run directory, and requires every variable of the model (and
    optimizer) to be found in the checkpoint with its shape. Returns the checkpoint's
    ``state.json`` dict.

    Raises:
      CheckpointError (a ``ValueError``): the folder is not a complete checkpoint, was written
        by another family or configuration, does not match the variables, or is corrupted.
    """
    folder = Path(folder)
    if not is_complete(folder):
        raise CheckpointError(f"{str(folder)!r} is not a complete checkpoint (it needs "
                              f"{STATE_FILE} and {PREFIX}.index)")
    trained = trained_model(model)
    run_config = run_config_of(folder)
    if run_config is not None:
        check_compatible(trained, run_config, folder)
    state = read_state(folder)
    trained.ensure_built()
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    objects = checkpointed_variables(model, optimizer)
    try:
        _check_counts(objects, str(folder / PREFIX))
        status = tf.train.Checkpoint(**objects).read(str(folder / PREFIX))
        if optimizer is None:
            status.expect_partial()  # the optimizer slots in the file are not wanted
        status.assert_existing_objects_matched()
    except (ValueError, AssertionError) as error:
        raise CheckpointError(f"checkpoint {str(folder)!r} does not fit this {trained.family!r} "
                              f"model: {_first_line(error)}") from None
    except (tf.errors.OpError, IndexError, OSError) as error:  # IndexError: truncated data
        raise CheckpointError(f"checkpoint {str(folder)!r} is corrupted or unreadable: "
                              f"{_first_line(error)}") from None
    return state


def _check_counts(objects, prefix):
    """``ValueError`` unless the checkpoint holds as many variables in each group ("model",
    "optimizer", ...) as ``objects``: reading only checks that ours are found, so a checkpoint
    with more (another architecture or optimizer) would otherwise restore partially."""
    saved = collections.Counter(name.split("/", 1)[0] for name, _ in tf.train.list_variables(prefix)
                                if name.endswith("/.ATTRIBUTES/VARIABLE_VALUE"))
    for group, variables in objects.items():
        if saved[group] != len(variables):
            raise ValueError(f"it holds {saved[group]} {group} variables, this {group} has "
                             f"{len(variables)}")


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

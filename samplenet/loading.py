"""Loading a trained model from a run directory, one of its checkpoints, or a ``.keras`` file.

Nothing here unpickles: checkpoints are TensorFlow checkpoints plus JSON, and ``.keras`` files
are read in Keras safe mode, which refuses to deserialize Python code (lambda layers).
"""
import zipfile
from pathlib import Path

from samplenet import config as schema
from samplenet.training import checkpoints
from samplenet.training.run_dir import RunDir


def locate(path):
    """``(run, checkpoint_folder, config)`` for ``path``.

    ``path`` is a run directory (its ``best`` checkpoint if any, else ``latest``) or a
    checkpoint folder inside one (``<run>/checkpoints/ckpt-*``; the run's ``config.json`` is
    two levels up). ``config`` is the run's resolved config.

    Raises ``ValueError`` naming ``path`` when it does not exist, is neither, or holds no
    checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"checkpoint path {str(path)!r} does not exist")
    if RunDir(path).is_run():
        run = RunDir(path)
        folder = (checkpoints.best_checkpoint(run.checkpoints)
                  or checkpoints.latest_checkpoint(run.checkpoints))
        if folder is None:
            raise ValueError(f"run directory {str(path)!r} has no checkpoint yet")
    elif checkpoints.is_complete(path):
        run, folder = RunDir.of_checkpoint(path), path
        if not run.is_run():
            raise ValueError(f"checkpoint {str(path)!r} is not inside a run directory "
                             f"({str(run.config_path)!r} is missing)")
    else:
        raise ValueError(f"{str(path)!r} is neither a run directory (with config.json) nor a "
                         "complete checkpoint folder (with state.json)")
    return run, folder, schema.resolve(run.read_config())


def model_from_checkpoint(folder, config):
    """Build the model ``config`` describes and restore its weights (no optimizer) from
    checkpoint ``folder``."""
    model = schema.model_from_config(config)
    checkpoints.restore(model, None, folder)
    return model


def load_keras_file(path):
    """A model saved with ``model.save("name.keras")``, loaded with ``safe_mode=True``.

    Raises ``ValueError`` naming ``path`` when the file cannot be loaded, e.g. when it holds a
    lambda layer (Python code, refused by safe mode) or is not a ``.keras`` archive."""
    import keras
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else \
            type(error).__name__
        raise ValueError(f"cannot load Keras model file {str(path)!r}: {reason}") from None


def load_model(path):
    """The model of a run directory or checkpoint folder, built, with its weights restored
    (no optimizer), or the model of a ``.keras`` file (``load_keras_file``). See ``locate`` for
    ``path``; raises ``ValueError`` naming it on failure."""
    if Path(path).suffix == ".keras" and Path(path).is_file():
        return load_keras_file(path)
    _, folder, config = locate(path)
    return model_from_checkpoint(folder, config)

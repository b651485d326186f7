"""Loading a trained model from a run directory or one of its checkpoints."""
from pathlib import Path

from samplenet.models import registry
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
    if (path / "config.json").is_file():
        run = RunDir(path)
        folder = (checkpoints.best_checkpoint(run.checkpoints)
                  or checkpoints.latest_checkpoint(run.checkpoints))
        if folder is None:
            raise ValueError(f"run directory {str(path)!r} has no checkpoint yet")
    elif checkpoints.is_complete(path):
        run, folder = RunDir(path.resolve().parent.parent), path
        if not run.config_path.is_file():
            raise ValueError(f"checkpoint {str(path)!r} is not inside a run directory "
                             f"({str(run.config_path)!r} is missing)")
    else:
        raise ValueError(f"{str(path)!r} is neither a run directory (with config.json) nor a "
                         "complete checkpoint folder (with state.json)")
    return run, folder, registry.resolve(run.read_config())


def model_from_checkpoint(folder, config):
    """Build the model ``config`` describes and restore its weights (no optimizer) from
    checkpoint ``folder``."""
    model = registry.model_from_config(config)
    checkpoints.restore(model, None, folder)
    return model


def load_model(path):
    """The model of a run directory or checkpoint folder, built, with its weights restored
    (no optimizer). See ``locate`` for ``path``; raises ``ValueError`` naming it on failure."""
    _, folder, config = locate(path)
    return model_from_checkpoint(folder, config)

"""The layout of a run directory and atomic file writes.

A run directory holds::

    config.json          the resolved config (generate/evaluate need only the run folder)
    checkpoints/         ckpt-<epoch:05d>/ folders, `latest` and `best` pointer files
    log.csv              one row per epoch, appended across resumes
    tensorboard/         summaries (scalars, learning rate, generated audio)
    samples/             WAV files generated during training and by generate.py
"""
import datetime
import json
import os
import tempfile
from pathlib import Path

CONFIG_FILE = "config.json"


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so
    a reader sees the old content or the new one, never a partial file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def default_logdir(name, now=None, root="runs"):
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` for a run of preset or family ``name``."""
    now = now or datetime.datetime.now()
    return str(Path(root) / f"{name}-{now:%Y%m%d-%H%M%S}")


class RunDir:
    """Paths inside one run directory (nothing is created until ``create()``)."""

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def of_checkpoint(cls, folder):
        """The run directory that checkpoint ``folder`` (``<run>/checkpoints/ckpt-*``) is in,
        if it is in one (``is_run``)."""
        return cls(Path(folder).resolve().parent.parent)

    def is_run(self):
        """Whether the folder is a run directory (it has a config file)."""
        return self.config_path.is_file()

    def __str__(self):
        return str(self.path)

    @property
    def config_path(self):
        return self.path / CONFIG_FILE

    @property
    def checkpoints(self):
        return self.path / "checkpoints"

    @property
    def log_csv(self):
        return self.path / "log.csv"

    @property
    def tensorboard(self):
        return self.path / "tensorboard"

    @property
    def samples(self):
        return self.path / "samples"

    def create(self):
        """Create the folder and its sub-folders; ``OSError`` naming the run directory if it
        cannot."""
        try:
            for folder in (self.path, self.checkpoints, self.tensorboard, self.samples):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(f"cannot create the run directory {str(self.path)!r}: "
                          f"{error.strerror or error}") from None
        return self

    def write_config(self, config):
        """Write the resolved ``config`` as ``config.json`` atomically."""
        atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def read_config(self):
        """The run's config dict; ``ValueError`` naming the file if missing or not JSON."""
        if not self.config_path.is_file():
            raise ValueError(f"{str(self.path)!r} is not a run directory: it has no {CONFIG_FILE}")
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except ValueError as error:  # not UTF-8 or not JSON
            raise ValueError(f"{str(self.config_path)!r} is not valid JSON: {error}") from None

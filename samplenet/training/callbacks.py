"""Keras callbacks of a training run: checkpoints, the non-finite loss guard, the CSV log,
TensorBoard summaries, periodic samples, and early stopping.

Only the chief worker writes files (``is_chief``); the others write nothing. A checkpoint holds
only mirrored (ON_WRITE) variables, the model's weights and the optimizer's, which every worker
reads locally, so writing one needs no collective operation and the other workers need not take
part (unlike variables synchronised on read, such as Keras metrics or SampleRNN's carried state,
which checkpoints leave out; ``tests/training/test_multiworker.py`` runs the chief-only writes).
"""
import csv
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from samplenet import audio as audio_io
from samplenet.training import checkpoints

_logger = logging.getLogger(__name__)

# TensorBoard plugin metadata, written with core TF ops (``tf.summary.write``) so that summaries
# need no ``tensorboard`` package: the scalars plugin takes an empty ScalarPluginData; the audio
# plugin an AudioPluginData with encoding = WAV (field 2 = 11, serialized as b"\x10\x0b").
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))
_AUDIO_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="audio", content=b"\x10\x0b"))


def write_scalar(name, value, step):
    """A TensorBoard scalar in the default summary writer."""
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=_SCALAR_METADATA)


def write_audio(name, audio, sample_rate, step):
    """A TensorBoard audio clip (``audio`` float32 ``(time,)`` in [-1, 1]) as a WAV."""
    wav = tf.audio.encode_wav(tf.clip_by_value(tf.constant(audio, tf.float32), -1.0, 1.0)[:, None],
                              sample_rate)
    tf.summary.write(name, tf.stack([[wav, tf.constant("")]]), step=step, metadata=_AUDIO_METADATA)


def optimizer_step(optimizer):
    """The optimizer's step count (``iterations``) as an int, also for distributed variables."""
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def current_learning_rate(optimizer):
    """The optimizer's learning rate at its current step, as a float."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def weights_finite(model):
    """True when every weight of ``model`` is finite."""
    return all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights
               if w.dtype.startswith(("float", "bfloat")))


def monitored(logs):
    """``(name, value)`` of the quantity that ranks epochs: ``val_loss`` when validation ran,
    else ``loss``."""
    name = "val_loss" if "val_loss" in logs else "loss"
    value = logs.get(name)
    return name, (float(value) if value is not None else math.nan)


class CheckpointWriter(keras.callbacks.Callback):
    """Write a checkpoint every ``every`` epochs and after the last epoch of a session (see
    ``samplenet.training.checkpoints``).

    A checkpoint is never written when the training loss, the monitored loss or any weight is
    not finite, so the ``latest`` pointer keeps naming the last good weights after a divergence.

    Args:
      checkpoints_dir: the run's ``checkpoints`` folder.
      every: epochs between checkpoints (>= 1).
      policy: ``"best"`` or ``"all"``.
      is_chief: only the chief writes into the run directory.
      best_value: the best monitored value so far (from the run's ``best`` checkpoint on resume).
      elapsed_seconds: training time already spent in earlier sessions of the run.
      train_steps: training steps (batches) already taken in earlier sessions of the run.

    ``state.json`` records the data position, ``{"train_steps": steps}``: the training steps
    whose batches the (deterministic, repeated) training pipeline has delivered, so that a
    resumed run skips exactly those. They are counted here, not read from the optimizer: under
    mixed_float16 a step whose gradients overflowed consumed its batch but is not an optimizer
    step. (Validation inside ``fit`` starts its pipeline afresh every epoch, so it has no
    position.)
    """

    def __init__(self, checkpoints_dir, *, every=1, policy="best", is_chief=True,
                 best_value=math.inf, elapsed_seconds=0.0, train_steps=0):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"train.checkpoint_every must be an int >= 1, got {every!r}")
        if policy not in checkpoints.POLICIES:
            raise ValueError(f"train.checkpoint_policy must be one of "
                             f"{sorted(checkpoints.POLICIES)}, got {policy!r}")
        self.checkpoints_dir = Path(checkpoints_dir)
        self.every = every
        self.policy = policy
        self.is_chief = is_chief
        self.best_value = best_value
        self.elapsed_seconds = elapsed_seconds
        self.train_steps = train_steps
        self._session_start = time.monotonic()
        self._unsaved = None

    def on_train_batch_end(self, batch, logs=None):
        self.train_steps += 1

    def on_train_begin(self, logs=None):
        self._session_start = time.monotonic()
        self._unsaved = None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if (epoch + 1) % self.every:
            self._unsaved = (epoch, logs)
            return
        self._unsaved = None
        self._write(epoch, logs)

    def on_train_end(self, logs=None):
        """The last epoch of the session is saved even when it is not a multiple of ``every``."""
        if self._unsaved is not None:
            self._write(*self._unsaved)
            self._unsaved = None

    def _write(self, epoch, logs):
        name, value = monitored(logs)
        loss = float(logs.get("loss", 0.0))
        if not (math.isfinite(value) and math.isfinite(loss) and weights_finite(self.model)):
            _logger.warning("epoch %d: the loss (%s), %s (%s) or a weight is not finite; no "
                            "checkpoint written", epoch + 1, loss, name, value)
            return
        is_best = value < self.best_value
        state = {"epoch": epoch + 1,
                 "step": optimizer_step(self.model.optimizer),
                 "data_position": {"train_steps": self.train_steps},
                 "val_loss": float(logs["val_loss"]) if "val_loss" in logs else None,
                 "monitor": name, "monitored_value": value,
                 "metrics": {k: float(v) for k, v in logs.items()},
                 "wall_time": time.time(),
                 "elapsed_seconds": self.elapsed_seconds + time.monotonic() - self._session_start}
        if self.is_chief:
            checkpoints.save_checkpoint(self.checkpoints_dir, self.model, self.model.optimizer,
                                        state, is_best=is_best, policy=self.policy)
        if is_best:
            self.best_value = value


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    ``message`` (``None`` while all is well) names the epoch, the batch and the optimizer step.
    """

    def __init__(self):
        super().__init__()
        self.message = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)) or self.message is not None:
            return
        self.message = (f"the training loss became {float(loss)} at epoch {self._epoch + 1}, "
                        f"batch {batch + 1} (optimizer step "
                        f"{optimizer_step(self.model.optimizer)}); training stopped")
        self.model.stop_training = True


class CsvLog(keras.callbacks.Callback):
    """Append one row per epoch to ``path`` (epoch, optimizer step, learning rate, epoch
    seconds, metrics). The header is written once; a resumed run keeps the existing columns."""

    def __init__(self, path, *, is_chief=True):
        super().__init__()
        self.path = Path(path)
        self.is_chief = is_chief
        self._epoch_start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if not self.is_chief:
            return
        logs = logs or {}
        row = {"epoch": epoch + 1, "step": optimizer_step(self.model.optimizer),
               "learning_rate": current_learning_rate(self.model.optimizer),
               "seconds": round(time.monotonic() - self._epoch_start, 3),
               **{k: float(v) for k, v in logs.items()}}
        fieldnames = self._existing_header()
        with open(self.path, "a", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=fieldnames or list(row),
                                    extrasaction="ignore", restval="")
            if not fieldnames:
                writer.writeheader()
            writer.writerow(row)

    def _existing_header(self):
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        with open(self.path, newline="", encoding="utf-8") as file:
            return next(csv.reader(file), None)


class ScalarSummaries(keras.callbacks.Callback):
    """TensorBoard scalars per epoch: every metric in the logs plus ``learning_rate``."""

    def __init__(self, writer, *, is_chief=True):
        super().__init__()
        self.writer = writer
        self.is_chief = is_chief

    def on_epoch_end(self, epoch, logs=None):
        if not self.is_chief:
            return
        with self.writer.as_default():
            for name, value in (logs or {}).items():
                write_scalar(name, float(value), epoch + 1)
            write_scalar("learning_rate", current_learning_rate(self.model.optimizer), epoch + 1)
        self.writer.flush()


class SampleWriter(keras.callbacks.Callback):
    """Every ``every`` epochs, generate ``seconds`` of audio with ``model.generate`` (with the
    model's ``preview_arguments``) and write it to ``samples/epoch-<epoch:05d>.wav`` and to
    TensorBoard. Models that cannot generate a preview (``preview_arguments()`` is None) are
    skipped."""

    def __init__(self, samples_dir, writer, *, every, seconds, sample_rate, is_chief=True,
                 seed=0):
        super().__init__()
        if not isinstance(every, int) or every < 0:
            raise ValueError(f"train.generate_every must be an int >= 0 (0 = off), got {every!r}")
        if seconds <= 0 and every:
            raise ValueError(f"train.generate_seconds must be > 0, got {seconds!r}")
        self.samples_dir = Path(samples_dir)
        self.writer = writer
        self.every = every
        self.seconds = seconds
        self.sample_rate = sample_rate
        self.is_chief = is_chief
        self.seed = seed

    def on_epoch_end(self, epoch, logs=None):
        if (not self.every or (epoch + 1) % self.every or not self.is_chief
                or not weights_finite(self.model)):
            return
        arguments = self.model.preview_arguments()
        if arguments is None:
            self.every = 0
            return
        _, audio = self.model.generate(max(1, round(self.seconds * self.sample_rate)),
                                       batch_size=1, seed=self.seed + epoch, **arguments)
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        audio_io.save(self.samples_dir / f"epoch-{epoch + 1:05d}.wav", audio[0],
                      self.sample_rate)
        with self.writer.as_default():
            write_audio("generated", audio[0], self.sample_rate, epoch + 1)
        self.writer.flush()


def make_callbacks(run, train, *, sample_rate, has_validation, is_chief, best_value=math.inf,
                   elapsed_seconds=0.0, train_steps=0):
    """The callbacks of one training session.

    Args:
      run: the ``RunDir``.
      train: the resolved ``train`` section.
      sample_rate: Hz of the model's audio (for samples).
      has_validation: whether validation runs (early stopping then watches ``val_loss``).
      is_chief, best_value, elapsed_seconds, train_steps: see ``CheckpointWriter``.
    Returns ``(callbacks, guard)``: the list for ``fit`` and the ``NonFiniteLossGuard`` in it.
    """
    guard = NonFiniteLossGuard()
    writer = tf.summary.create_file_writer(str(run.tensorboard)) if is_chief else None
    callbacks = [guard,
                 CheckpointWriter(run.checkpoints, every=train["checkpoint_every"],
                                  policy=train["checkpoint_policy"], is_chief=is_chief,
                                  best_value=best_value, elapsed_seconds=elapsed_seconds,
                                  train_steps=train_steps),
                 CsvLog(run.log_csv, is_chief=is_chief),
                 ScalarSummaries(writer, is_chief=is_chief),
                 SampleWriter(run.samples, writer, every=train["generate_every"],
                              seconds=train["generate_seconds"], sample_rate=sample_rate,
                              is_chief=is_chief, seed=train["seed"])]
    patience = train["early_stopping_patience"]
    if patience < 0:
        raise ValueError(f"train.early_stopping_patience must be >= 0 (0 = off), got {patience!r}")
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss" if has_validation else "loss", patience=patience,
            restore_best_weights=False, verbose=1))
    return callbacks, guard

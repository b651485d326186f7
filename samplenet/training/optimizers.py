"""The optimizer a config's ``train`` section describes.

Keys used (defaults in ``samplenet.config.TRAIN_DEFAULTS``): ``optimizer`` (adam | sgd | rmsprop),
``learning_rate``, ``epsilon`` (adam, rmsprop), ``momentum`` (sgd, rmsprop), ``clipnorm``
(global-norm clipping of the whole gradient, 0 = off) or ``clipvalue`` (each gradient value
clipped to [-clipvalue, clipvalue], as the SampleRNN reference does; 0 = off), ``lr_decay``
and ``lr_decay_steps`` (exponential decay: the rate is multiplied by ``1 - lr_decay`` every
``lr_decay_steps`` optimizer steps, smoothly in between; ``lr_decay = 0`` keeps it constant),
``mixed_precision``
(``"mixed_float16"`` wraps the optimizer in a ``keras.optimizers.LossScaleOptimizer``).
"""
import keras

from samplenet.config import TRAIN_DEFAULTS

OPTIMIZERS = frozenset({"adam", "sgd", "rmsprop"})


def learning_rate_schedule(train):
    """The learning rate of ``train``: a float, or an ``ExponentialDecay`` schedule."""
    learning_rate = float(train["learning_rate"])
    decay = float(train["lr_decay"])
    if learning_rate <= 0:
        raise ValueError(f"train.learning_rate must be > 0, got {learning_rate!r}")
    if not 0 <= decay < 1:
        raise ValueError(f"train.lr_decay must be in [0, 1), got {decay!r}")
    if decay == 0:
        return learning_rate
    if train["lr_decay_steps"] < 1:
        raise ValueError(f"train.lr_decay_steps must be >= 1, got {train['lr_decay_steps']!r}")
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=train["lr_decay_steps"], decay_rate=1.0 - decay)


def make_optimizer(train):
    """A Keras optimizer for the ``train`` section (missing keys take their defaults).

    Under ``mixed_precision="mixed_float16"`` it is a ``LossScaleOptimizer`` around the optimizer
    (dynamic loss scaling: float16 gradients would underflow): the models' ``train_step``
    multiply the loss by its scale (``optimizer.scale_loss``) and its ``apply`` divides the
    gradients by it, skips a step whose gradients overflowed and halves the scale. Wrapping it
    here rather than in ``model.compile`` (which Keras does too) makes the optimizer the caller
    builds, checkpoints and restores the one that trains, loss scale included.

    Raises ``ValueError`` for an unknown optimizer or an out-of-range value.
    """
    train = {**TRAIN_DEFAULTS, **train}
    name = train["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"train.optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    for key in ("clipnorm", "clipvalue"):
        if train[key] < 0:
            raise ValueError(f"train.{key} must be >= 0 (0 = off), got {train[key]!r}")
    if train["clipnorm"] and train["clipvalue"]:
        raise ValueError(f"set one of train.clipnorm ({train['clipnorm']!r}) and "
                         f"train.clipvalue ({train['clipvalue']!r}); the other must be 0")
    common = {"learning_rate": learning_rate_schedule(train),
              "global_clipnorm": float(train["clipnorm"]) or None,
              "clipvalue": float(train["clipvalue"]) or None}
    if name == "adam":
        optimizer = keras.optimizers.Adam(epsilon=train["epsilon"], **common)
    elif name == "sgd":
        optimizer = keras.optimizers.SGD(momentum=train["momentum"], **common)
    else:
        optimizer = keras.optimizers.RMSprop(epsilon=train["epsilon"],
                                             momentum=train["momentum"], **common)
    if train["mixed_precision"] == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer

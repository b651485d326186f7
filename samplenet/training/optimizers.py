"""The optimizer a config's ``train`` section describes.

Keys used (defaults in ``registry.TRAIN_DEFAULTS``): ``optimizer`` (adam | sgd | rmsprop),
``learning_rate``, ``epsilon`` (adam, rmsprop), ``momentum`` (sgd, rmsprop), ``clipnorm``
(global-norm clipping of the whole gradient, 0 = off), ``lr_decay`` and ``lr_decay_steps``
(exponential decay: the rate is multiplied by ``1 - lr_decay`` every ``lr_decay_steps``
optimizer steps, smoothly in between; ``lr_decay = 0`` keeps it constant).
"""
import keras

from samplenet.models.registry import TRAIN_DEFAULTS

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

    Raises ``ValueError`` for an unknown optimizer or an out-of-range value.
    """
    train = {**TRAIN_DEFAULTS, **train}
    name = train["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"train.optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    if train["clipnorm"] < 0:
        raise ValueError(f"train.clipnorm must be >= 0 (0 = off), got {train['clipnorm']!r}")
    common = {"learning_rate": learning_rate_schedule(train),
              "global_clipnorm": float(train["clipnorm"]) or None}
    if name == "adam":
        return keras.optimizers.Adam(epsilon=train["epsilon"], **common)
    if name == "sgd":
        return keras.optimizers.SGD(momentum=train["momentum"], **common)
    return keras.optimizers.RMSprop(epsilon=train["epsilon"], momentum=train["momentum"],
                                    **common)

"""Tests of samplenet.training.optimizers."""
import keras
import numpy as np
import pytest

from samplenet.config import TRAIN_DEFAULTS
from samplenet.training.optimizers import make_optimizer


def _train(**overrides):
    return {**TRAIN_DEFAULTS, **overrides}


@pytest.mark.parametrize("name, cls", [("adam", keras.optimizers.Adam),
                                       ("sgd", keras.optimizers.SGD),
                                       ("rmsprop", keras.optimizers.RMSprop)])
def test_make_optimizer_kind_matches_name(name, cls):
    optimizer = make_optimizer(_train(optimizer=name, learning_rate=0.01, epsilon=1e-3,
                                      momentum=0.5))
    assert isinstance(optimizer, cls)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    if name in ("adam", "rmsprop"):
        assert optimizer.epsilon == pytest.approx(1e-3)
    if name in ("sgd", "rmsprop"):
        assert optimizer.momentum == pytest.approx(0.5)


def _update_norm(clipnorm):
    """Norm of one SGD update (learning rate 1) of a gradient of norm 2000."""
    optimizer = make_optimizer(_train(optimizer="sgd", learning_rate=1.0, clipnorm=clipnorm))
    variable = keras.Variable(np.zeros(4, np.float32))
    optimizer.apply([keras.ops.convert_to_tensor(np.full(4, 1000.0, np.float32))], [variable])
    return float(np.linalg.norm(variable.numpy()))


def test_make_optimizer_clipnorm_bounds_the_update():
    assert _update_norm(clipnorm=1.5) == pytest.approx(1.5, rel=1e-5)


def test_make_optimizer_zero_clipnorm_does_not_clip():
    assert _update_norm(clipnorm=0.0) == pytest.approx(2000.0, rel=1e-5)


def test_make_optimizer_clipvalue_clips_each_gradient_value():
    optimizer = make_optimizer(_train(optimizer="sgd", learning_rate=1.0, clipnorm=0.0,
                                      clipvalue=1.0))
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer.apply([keras.ops.convert_to_tensor(np.array([5.0, -0.25, -3.0], np.float32))],
                    [variable])
    np.testing.assert_allclose(variable.numpy(), [-1.0, 0.25, 1.0])


def test_make_optimizer_clipnorm_and_clipvalue_together_raise():
    with pytest.raises(ValueError, match="one of train.clipnorm .* and train.clipvalue"):
        make_optimizer(_train(clipnorm=5.0, clipvalue=1.0))


def test_make_optimizer_lr_decay_is_exponential_in_steps():
    optimizer = make_optimizer(_train(learning_rate=0.1, lr_decay=0.5, lr_decay_steps=10))
    optimizer.build([keras.Variable(np.zeros(2, np.float32))])
    assert float(optimizer.learning_rate) == pytest.approx(0.1)
    optimizer.iterations.assign(20)
    assert float(optimizer.learning_rate) == pytest.approx(0.1 * 0.5 ** 2)


def test_make_optimizer_missing_keys_take_defaults():
    optimizer = make_optimizer({"optimizer": "adam"})
    assert float(optimizer.learning_rate) == pytest.approx(TRAIN_DEFAULTS["learning_rate"])
    assert optimizer.global_clipnorm == pytest.approx(TRAIN_DEFAULTS["clipnorm"])


def test_make_optimizer_unknown_name_raises_listing_options():
    with pytest.raises(ValueError) as info:
        make_optimizer(_train(optimizer="adagrad"))
    assert all(word in str(info.value) for word in ("adagrad", "adam", "rmsprop", "sgd"))


@pytest.mark.parametrize("key, value", [("learning_rate", 0.0), ("lr_decay", 1.0),
                                        ("clipnorm", -1.0), ("clipvalue", -1.0)])
def test_make_optimizer_out_of_range_value_raises(key, value):
    with pytest.raises(ValueError, match=key):
        make_optimizer(_train(**{key: value}))

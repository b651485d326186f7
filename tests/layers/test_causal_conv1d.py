import numpy as np
import pytest
import tensorflow as tf

from samplenet.layers.causal_conv1d import CausalConv1D
from samplenet.ops.receptive_field import dependent_positions, measured_receptive_field
from samplenet.testing import assert_layer_contract


def _numpy_causal_conv(x, kernel, bias, dilation):
    """Direct definition: y[b, t] = bias + sum_k x[b, t - (K-1-k)*d] @ kernel[k], zero before 0."""
    batch, length, _ = x.shape
    width = kernel.shape[0]
    y = np.tile(bias, (batch, length, 1)).astype(np.float64)
    for t in range(length):
        for k in range(width):
            source = t - (width - 1 - k) * dilation
            if source >= 0:
                y[:, t] += x[:, source] @ kernel[k]
    return y


def _inputs(batch=2, length=20, channels=3, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, length, channels)).astype(np.float32)


def test_causal_conv1d_contract():
    layer = CausalConv1D(4, 3, dilation_rate=2, name="conv")
    output = assert_layer_contract(layer, _inputs())
    assert output.shape == (2, 20, 4)


@pytest.mark.parametrize("width,dilation", [(1, 1), (2, 1), (2, 4), (3, 3)])
def test_causal_conv1d_matches_numpy_reference(width, dilation):
    layer = CausalConv1D(5, width, dilation_rate=dilation)
    x = _inputs()
    layer.build(x.shape)
    layer.bias.assign(np.random.default_rng(1).standard_normal(5).astype(np.float32))
    expected = _numpy_causal_conv(x, layer.kernel.numpy(), layer.bias.numpy(), dilation)
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("width,dilation", [(1, 1), (2, 1), (2, 8), (3, 2), (4, 3)])
def test_causal_conv1d_step_equals_call(width, dilation):
    layer = CausalConv1D(4, width, dilation_rate=dilation)
    x = _inputs(length=30)
    expected = layer(x).numpy()
    cache = layer.initial_cache(2)
    outputs = []
    for t in range(x.shape[1]):
        y, cache = layer.step(tf.constant(x[:, t]), cache, tf.constant(t))
        outputs.append(y.numpy())
    assert cache.shape == (dilation * (width - 1), 2, 3)
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, atol=1e-5)


@pytest.mark.parametrize("width,dilation,split", [(1, 1, 5), (2, 8, 13), (3, 2, 9), (4, 3, 21)])
def test_causal_conv1d_cache_from_history_continues_like_call(width, dilation, split):
    layer = CausalConv1D(4, width, dilation_rate=dilation)
    x = _inputs(length=30)
    expected = layer(x).numpy()
    cache = layer.cache_from_history(tf.constant(x[:, :split]), tf.constant(split))
    for t in range(split, x.shape[1]):
        y, cache = layer.step(tf.constant(x[:, t]), cache, tf.constant(t))
        np.testing.assert_allclose(y.numpy(), expected[:, t], atol=1e-5)


@pytest.mark.parametrize("width,dilation", [(1, 1), (2, 4), (3, 5)])
def test_causal_conv1d_receptive_field_measured(width, dilation):
    layer = CausalConv1D(2, width, dilation_rate=dilation)
    assert measured_receptive_field(layer, 48, channels=3) == layer.receptive_field
    assert dependent_positions(layer, 48, position=30, channels=3).max() == 30


def test_causal_conv1d_without_bias_has_only_kernel():
    layer = CausalConv1D(3, 2, use_bias=False)
    layer.build((None, None, 2))
    assert [w.name for w in layer.weights] == ["kernel"]


@pytest.mark.parametrize("argument,value", [("filters", 0), ("kernel_size", 0),
                                            ("dilation_rate", -1), ("kernel_size", 2.5)])
def test_causal_conv1d_rejects_bad_arguments(argument, value):
    arguments = dict(filters=2, kernel_size=2, dilation_rate=1)
    arguments[argument] = value
    with pytest.raises(ValueError, match=argument):
        CausalConv1D(**arguments)

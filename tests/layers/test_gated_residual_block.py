import numpy as np
import pytest
import tensorflow as tf

from samplenet.layers.gated_residual_block import GatedResidualBlock
from samplenet.testing import assert_layer_contract

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 12, 4)).astype(np.float32)
G = RNG.standard_normal((2, 3)).astype(np.float32)
L = RNG.standard_normal((2, 12, 5)).astype(np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_block(block, x, g=None, c=None):
    """The block written out in NumPy from its weights."""
    kernel, bias = block.dilated.kernel.numpy(), block.dilated.bias.numpy()
    width, dilation = block.filter_width, block.dilation_rate
    hidden = np.tile(bias, x.shape[:2] + (1,)).astype(np.float64)
    for t in range(x.shape[1]):
        for k in range(width):
            source = t - (width - 1 - k) * dilation
            if source >= 0:
                hidden[:, t] += x[:, source] @ kernel[k]
    if g is not None:
        hidden += (g @ block.global_projection.kernel.numpy())[:, None]
    if c is not None:
        hidden += c @ block.local_projection.kernel.numpy()
    half = block.dilation_channels
    z = np.tanh(hidden[..., :half]) * _sigmoid(hidden[..., half:])
    projected = z @ block.output_projection.kernel.numpy() + block.output_projection.bias.numpy()
    if not block.use_residual:
        return None, projected
    residual_channels = x.shape[-1]
    return x + projected[..., :residual_channels], projected[..., residual_channels:]


def test_gated_residual_block_contract():
    block = GatedResidualBlock(4, 6, 7, filter_width=2, dilation_rate=2, name="block")
    residual, skip = assert_layer_contract(block, X)
    assert residual.shape == (2, 12, 4) and skip.shape == (2, 12, 7)


def test_gated_residual_block_contract_with_conditioning():
    block = GatedResidualBlock(4, 6, 7, filter_width=3, dilation_rate=1,
                               global_condition_channels=3, local_condition_channels=5)
    assert_layer_contract(block, X, call_kwargs=dict(global_condition=G, local_condition=L))


@pytest.mark.parametrize("conditioned", [False, True])
@pytest.mark.parametrize("use_residual", [True, False])
def test_gated_residual_block_matches_numpy_reference(conditioned, use_residual):
    block = GatedResidualBlock(4, 6, 7, filter_width=3, dilation_rate=2,
                               global_condition_channels=3 if conditioned else 0,
                               local_condition_channels=5 if conditioned else 0,
                               use_residual=use_residual)
    kwargs = dict(global_condition=G, local_condition=L) if conditioned else {}
    block(X, **kwargs)  # builds the weights
    block.dilated.bias.assign(RNG.standard_normal(12).astype(np.float32))
    residual, skip = block(X, **kwargs)
    expected_residual, expected_skip = _numpy_block(block, X, G if conditioned else None,
                                                    L if conditioned else None)
    np.testing.assert_allclose(skip.numpy(), expected_skip, atol=1e-5)
    if use_residual:
        np.testing.assert_allclose(residual.numpy(), expected_residual, atol=1e-5)
    else:
        assert residual is None and block.output_projection.units == 7


def test_gated_residual_block_step_equals_call():
    block = GatedResidualBlock(4, 6, 7, filter_width=2, dilation_rate=4,
                               global_condition_channels=3, local_condition_channels=5)
    residual, skip = block(X, global_condition=G, local_condition=L)
    cache = block.initial_cache(2)
    steps = []
    for t in range(X.shape[1]):
        r, s, cache = block.step(tf.constant(X[:, t]), cache, tf.constant(t),
                                 global_condition=G, local_condition=L[:, t])
        steps.append((r.numpy(), s.numpy()))
    np.testing.assert_allclose(np.stack([r for r, _ in steps], 1), residual.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.stack([s for _, s in steps], 1), skip.numpy(), atol=1e-5)


def test_gated_residual_block_cache_from_history_continues_like_call():
    block = GatedResidualBlock(4, 6, 7, filter_width=3, dilation_rate=2)
    _, skip = block(X)
    cache = block.cache_from_history(tf.constant(X[:, :5]), tf.constant(5))
    for t in range(5, X.shape[1]):
        _, s, cache = block.step(tf.constant(X[:, t]), cache, tf.constant(t))
        np.testing.assert_allclose(s.numpy(), skip.numpy()[:, t], atol=1e-5)


def test_gated_residual_block_is_causal():
    block = GatedResidualBlock(4, 6, 7, filter_width=2, dilation_rate=2)
    changed = X.copy()
    changed[:, 7] += 1.0
    before, after = block(X)[1].numpy(), block(changed)[1].numpy()
    np.testing.assert_array_equal(before[:, :7], after[:, :7])
    assert np.abs(before[:, 7] - after[:, 7]).max() > 0


def test_gated_residual_block_requires_configured_conditioning():
    block = GatedResidualBlock(4, 6, 7, global_condition_channels=3)
    with pytest.raises(ValueError, match="global_condition"):
        block(X)
    with pytest.raises(ValueError, match="local_condition"):
        block(X, global_condition=G, local_condition=L)


def test_gated_residual_block_rejects_wrong_input_channels():
    with pytest.raises(ValueError, match="residual_channels"):
        GatedResidualBlock(8, 6, 7)(X)


@pytest.mark.parametrize("argument,value", [("residual_channels", 0), ("dilation_channels", -2),
                                            ("skip_channels", 1.5), ("filter_width", 0),
                                            ("dilation_rate", 0),
                                            ("local_condition_channels", -1)])
def test_gated_residual_block_rejects_bad_arguments(argument, value):
    arguments = dict(residual_channels=4, dilation_channels=4, skip_channels=4)
    arguments[argument] = value
    with pytest.raises(ValueError, match=argument):
        GatedResidualBlock(**arguments)

import numpy as np
import pytest

from samplenet.layers.conditioning_upsampler import ConditioningUpsampler, factorize_hop
from samplenet.testing import assert_layer_contract

FEATURES = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)


def _leaky_relu(x):
    return np.where(x > 0, x, 0.4 * x)


def _numpy_transposed_conv(x, kernel, bias):
    """Transposed conv with kernel size = stride: y[i*s + k] = x[i] @ kernel[k] + bias."""
    batch, frames, _ = x.shape
    stride = kernel.shape[0]
    y = np.zeros((batch, frames * stride, kernel.shape[2]))
    for i in range(frames):
        for k in range(stride):
            y[:, i * stride + k] = x[:, i] @ kernel[k] + bias
    return y


@pytest.mark.parametrize("hop,expected", [(1, (1,)), (2, (2,)), (16, (16,)), (256, (16, 16)),
                                          (80, (10, 8)), (200, (10, 10, 2)), (12, (12,))])
def test_factorize_hop_multiplies_to_hop(hop, expected):
    factors = factorize_hop(hop)
    assert factors == expected
    assert int(np.prod(factors)) == hop and max(factors) <= 16


def test_factorize_hop_rejects_large_prime_and_bad_hop():
    with pytest.raises(ValueError, match="prime factor 17"):
        factorize_hop(34)
    with pytest.raises(ValueError, match="hop"):
        factorize_hop(0)


def test_conditioning_upsampler_contract():
    layer = ConditioningUpsampler(4, 6, max_factor=3, name="upsampler")
    output = assert_layer_contract(layer, FEATURES)
    assert output.shape == (2, 30, 4)
    assert layer.factors == (3, 2)


def test_conditioning_upsampler_matches_numpy_reference():
    layer = ConditioningUpsampler(4, 8, max_factor=4)
    layer(FEATURES)  # builds the weights
    for bias in layer.biases:
        bias.assign(np.random.default_rng(1).standard_normal(4).astype(np.float32))
    output = layer(FEATURES).numpy()
    expected = FEATURES
    for i, (kernel, bias) in enumerate(zip(layer.kernels, layer.biases)):
        if i:
            expected = _leaky_relu(expected)
        expected = _numpy_transposed_conv(expected, kernel.numpy(), bias.numpy())
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_conditioning_upsampler_frame_conditions_only_its_samples():
    layer = ConditioningUpsampler(4, 6, max_factor=3)
    changed = FEATURES.copy()
    changed[:, 2] += 1.0
    difference = np.abs(layer(changed).numpy() - layer(FEATURES).numpy()).max(axis=(0, 2))
    touched = np.flatnonzero(difference > 0)
    np.testing.assert_array_equal(touched, np.arange(12, 18))


def test_conditioning_upsampler_slices_of_frames_give_slices_of_samples():
    layer = ConditioningUpsampler(4, 6, max_factor=3)
    whole = layer(FEATURES).numpy()
    np.testing.assert_allclose(layer(FEATURES[:, 1:4]).numpy(), whole[:, 6:24], atol=1e-6)


def test_conditioning_upsampler_rejects_bad_channels():
    with pytest.raises(ValueError, match="channels"):
        ConditioningUpsampler(0, 4)

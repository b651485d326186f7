"""Tests of the SEANet encoder/decoder and their streamable convolutions: NumPy references,
causality with hop alignment, chunked streaming equal to whole processing, contracts."""
import numpy as np
import pytest
import tensorflow as tf

from samplenet.layers.seanet import (ResidualUnit, SeanetDecoder, SeanetEncoder,
                                     StreamingConv1D, StreamingConvTranspose1D)
from samplenet.testing import assert_layer_contract

STRIDES = (2, 3)
HOP = 6


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _numpy_causal_conv(x, kernel, bias, strides, dilation):
    """out[i] = bias + sum_k x[(i + 1) * strides - 1 - (K - 1 - k) * dilation] @ kernel[k]."""
    batch, time, _ = x.shape
    taps = kernel.shape[0]
    out = np.zeros((batch, time // strides, kernel.shape[2]))
    for i in range(time // strides):
        last = (i + 1) * strides - 1
        for k in range(taps):
            t = last - (taps - 1 - k) * dilation
            if t >= 0:
                out[:, i] += x[:, t] @ kernel[k]
    return out + bias


def _numpy_transposed_conv(x, kernel, bias, strides):
    """out[i * strides + k] += x[i] @ kernel[k].T, trimmed to time * strides."""
    batch, time, _ = x.shape
    taps, filters, _ = kernel.shape
    out = np.zeros((batch, (time - 1) * strides + taps, filters))
    for i in range(time):
        for k in range(taps):
            out[:, i * strides + k] += x[:, i] @ kernel[k].T
    return out[:, :time * strides] + bias


@pytest.mark.parametrize("kernel_size,strides,dilation", [(7, 1, 1), (3, 1, 4), (6, 3, 1),
                                                          (1, 1, 1)])
def test_streaming_conv_matches_numpy_reference(kernel_size, strides, dilation):
    layer = StreamingConv1D(5, kernel_size, strides=strides, dilation_rate=dilation)
    x = _random((2, 24, 3))
    out = layer(x).numpy()
    kernel, bias = (w.numpy() for w in layer.weights)
    np.testing.assert_allclose(out, _numpy_causal_conv(x, kernel, bias, strides, dilation),
                               atol=1e-5)


def test_streaming_conv_transpose_matches_numpy_reference():
    layer = StreamingConvTranspose1D(4, 6, 3)
    x = _random((2, 7, 5))
    out = layer(x).numpy()
    kernel, bias = (w.numpy() for w in layer.weights)
    np.testing.assert_allclose(out, _numpy_transposed_conv(x, kernel, bias, 3), atol=1e-5)


def _set_weight_norm(layer, seed):
    """Random direction and per-filter scale; returns the kernel they normalise to."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=layer.kernel.shape).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, size=layer.filters).astype(np.float32)
    layer.kernel.assign(direction)
    layer.kernel_scale.assign(scale)
    axes = tuple(layer.NORM_AXES)
    shape = [1, 1, 1]
    shape[({0, 1, 2} - set(axes)).pop()] = layer.filters
    norms = np.sqrt((direction.astype(np.float64) ** 2).sum(axis=axes, keepdims=True))
    return direction / norms * scale.reshape(shape), layer.bias.numpy()


@pytest.mark.parametrize("strides,dilation", [(1, 1), (1, 3), (2, 1)])
def test_weight_normalised_conv_equals_the_plain_conv_with_the_normalised_kernel(strides,
                                                                                dilation):
    layer = StreamingConv1D(5, 4, strides=strides, dilation_rate=dilation, weight_norm=True)
    x = _random((2, 24, 3))
    layer(x)
    kernel, bias = _set_weight_norm(layer, seed=1)
    np.testing.assert_allclose(layer(x).numpy(),
                               _numpy_causal_conv(x, kernel, bias, strides, dilation),
                               atol=1e-5)
    # The norm is per filter: doubling one filter's direction leaves the output unchanged.
    direction = layer.kernel.numpy()
    direction[..., 2] *= 2.0
    layer.kernel.assign(direction)
    np.testing.assert_allclose(layer(x).numpy(),
                               _numpy_causal_conv(x, kernel, bias, strides, dilation),
                               atol=1e-5)


def test_weight_normalised_transposed_conv_equals_the_plain_one_with_the_normalised_kernel():
    layer = StreamingConvTranspose1D(4, 6, 3, weight_norm=True)
    x = _random((2, 7, 5))
    layer(x)
    kernel, bias = _set_weight_norm(layer, seed=2)
    np.testing.assert_allclose(layer(x).numpy(), _numpy_transposed_conv(x, kernel, bias, 3),
                               atol=1e-5)


@pytest.mark.parametrize("make,shape", [
    (lambda wn: StreamingConv1D(4, 4, strides=2, weight_norm=wn), (2, 12, 3)),
    (lambda wn: StreamingConvTranspose1D(4, 4, 2, weight_norm=wn), (2, 6, 3)),
])
def test_weight_norm_starts_from_the_same_function(make, shape):
    """The scale starts at the initial kernel's norm, so the initial output is unchanged."""
    x = _random(shape)
    outputs = []
    for weight_norm in (False, True):
        tf.keras.utils.set_random_seed(3)
        outputs.append(make(weight_norm)(x).numpy())
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-5)


def test_weight_norm_reaches_every_convolution_and_is_validated():
    encoder, decoder = SeanetEncoder(4, STRIDES, 5, weight_norm=True), \
        SeanetDecoder(4, STRIDES, weight_norm=True)
    encoder(_random((1, 2 * HOP)))
    decoder(_random((1, 2, 5)))
    for layer in (encoder, decoder):
        kernels = [w for w in layer.weights if w.path.endswith("/kernel")]
        scales = [w for w in layer.weights if w.path.endswith("/kernel_scale")]
        assert kernels and len(scales) == len(kernels)
    for make in (lambda: StreamingConv1D(2, 3, weight_norm=1),
                 lambda: StreamingConvTranspose1D(2, 3, 2, weight_norm="yes"),
                 lambda: SeanetEncoder(4, STRIDES, 5, weight_norm=None)):
        with pytest.raises(ValueError, match="weight_norm"):
            make()


@pytest.mark.parametrize("weight_norm", [False, True])
def test_zero_init_residual_unit_starts_as_the_identity_and_can_learn(weight_norm):
    unit = ResidualUnit(3, 3, weight_norm=weight_norm, zero_init_residual=True)
    x = tf.constant(_random((2, 12, 3)))
    with tf.GradientTape() as tape:
        y = unit(x)
        loss = tf.reduce_sum(tf.square(y - 1.0))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    last = unit.pointwise.kernel_scale if weight_norm else unit.pointwise.kernel
    assert np.abs(tape.gradient(loss, last).numpy()).max() > 1e-3
    # Without the option the unit is not the identity.
    assert np.abs(ResidualUnit(3, 3)(x).numpy() - x.numpy()).max() > 1e-3


def test_zero_init_residual_reaches_every_unit_of_encoder_and_decoder():
    for layer, shape in ((SeanetEncoder(4, STRIDES, 5, zero_init_residual=True), (1, 2 * HOP)),
                         (SeanetDecoder(4, STRIDES, zero_init_residual=True), (1, 2, 5))):
        layer(_random(shape))
        units = [sub for sub in layer._flatten_layers() if isinstance(sub, ResidualUnit)]
        assert len(units) == 3 * len(STRIDES)
        assert all(unit.zero_init_residual and not np.any(unit.pointwise.kernel.numpy())
                   for unit in units)
    with pytest.raises(ValueError, match="zero_init_residual"):
        SeanetDecoder(4, STRIDES, zero_init_residual=0)


@pytest.mark.parametrize("make,shape", [
    (lambda: StreamingConv1D(4, 4, strides=2), (2, 12, 3)),
    (lambda: StreamingConvTranspose1D(4, 4, 2), (2, 6, 3)),
    (lambda: ResidualUnit(3, 3), (2, 12, 3)),
    (lambda: SeanetEncoder(4, STRIDES, 5), (2, 4 * HOP)),
    (lambda: SeanetDecoder(4, STRIDES), (2, 4, 5)),
    (lambda: SeanetEncoder(4, STRIDES, 5, weight_norm=True), (2, 4 * HOP)),
    (lambda: SeanetDecoder(4, STRIDES, weight_norm=True), (2, 4, 5)),
    (lambda: SeanetDecoder(4, STRIDES, zero_init_residual=True), (2, 4, 5)),
])
def test_seanet_layers_keep_the_layer_contract(make, shape):
    assert_layer_contract(make(), _random(shape))


@pytest.mark.parametrize("kwargs", [
    {"filters": 0, "kernel_size": 3}, {"filters": 2, "kernel_size": 2, "strides": 3},
    {"filters": 2, "kernel_size": 4, "strides": 2, "dilation_rate": 2},
    {"filters": 2, "kernel_size": 1.5}])
def test_streaming_conv_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        StreamingConv1D(**kwargs)


def test_encoder_rejects_bad_arguments_and_lengths():
    with pytest.raises(ValueError, match="strides"):
        SeanetEncoder(4, (2, 0), 5)
    with pytest.raises(ValueError, match="strides"):
        SeanetDecoder(4, ())
    with pytest.raises(ValueError, match="multiple of its hop"):
        SeanetEncoder(4, STRIDES, 5)(_random((1, HOP * 3 + 1)))


def test_encoder_shapes_and_hop():
    encoder = SeanetEncoder(4, STRIDES, 5)
    assert encoder.hop == HOP
    assert encoder(_random((3, 5 * HOP))).shape == (3, 5, 5)


def test_decoder_shapes_and_stages():
    decoder = SeanetDecoder(4, (2, 3, 2))
    audio, stages = decoder(_random((2, 5, 6)), return_stages=True)
    assert audio.shape == (2, 60)
    assert decoder.stage_factors == [6, 2, 1]
    assert [s.shape[1] for s in stages] == [60 // f for f in decoder.stage_factors]
    assert np.all(np.abs(audio.numpy()) <= 1.0)


def test_encoder_frame_depends_only_on_its_hop_and_before():
    encoder = SeanetEncoder(4, STRIDES, 5)
    audio = _random((1, 8 * HOP))
    base = encoder(audio).numpy()
    for t in (0, 3 * HOP, 3 * HOP + HOP - 1, 8 * HOP - 1):
        changed = audio.copy()
        changed[0, t] += 1.0
        out = encoder(changed).numpy()
        frame = t // HOP
        np.testing.assert_array_equal(out[:, :frame], base[:, :frame])
        assert np.abs(out[:, frame] - base[:, frame]).max() > 1e-6


def test_decoder_samples_depend_only_on_their_frame_and_before():
    decoder = SeanetDecoder(4, STRIDES)
    latent = _random((1, 8, 5))
    base = decoder(latent).numpy()
    for frame in (0, 3, 7):
        changed = latent.copy()
        changed[0, frame] += 1.0
        out = decoder(changed).numpy()
        np.testing.assert_array_equal(out[:, :frame * HOP], base[:, :frame * HOP])
        assert np.abs(out[:, frame * HOP:(frame + 1) * HOP]
                      - base[:, frame * HOP:(frame + 1) * HOP]).max() > 1e-6


def _chunked(layer, inputs, bounds):
    state = layer.initial_state(inputs.shape[0])
    outputs = []
    for start, stop in zip(bounds, bounds[1:]):
        out, state = layer.stream(inputs[:, start:stop], state)
        outputs.append(out.numpy())
    return np.concatenate(outputs, axis=1)


@pytest.mark.parametrize("weight_norm", [False, True])
def test_encoder_streaming_equals_whole_encoding(weight_norm):
    encoder = SeanetEncoder(4, STRIDES, 5, weight_norm=weight_norm)
    audio = _random((2, 20 * HOP))
    whole = encoder(audio).numpy()
    chunked = _chunked(encoder, audio, [0, HOP, 2 * HOP, 9 * HOP, 20 * HOP])
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


@pytest.mark.parametrize("weight_norm", [False, True])
def test_decoder_streaming_equals_whole_decoding(weight_norm):
    decoder = SeanetDecoder(4, STRIDES, weight_norm=weight_norm)
    latent = _random((2, 20, 5))
    whole = decoder(latent).numpy()
    chunked = _chunked(decoder, latent, [0, 1, 2, 9, 20])
    np.testing.assert_allclose(chunked, whole, atol=1e-5)

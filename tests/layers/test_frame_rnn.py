"""FrameRNN: contract, step-by-step equals the sequence pass, options that must combine."""
import numpy as np
import pytest
import tensorflow as tf

from samplenet.layers.frame_rnn import LSTM_FORGET_BIAS, FrameRNN
from samplenet.testing import assert_layer_contract

FRAME, RATIO, DIM = 4, 2, 8


def _frames(batch=2, num_frames=5, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, (batch, num_frames, FRAME)).astype(
        np.float32)


def _layer(**kwargs):
    options = dict(rnn_type="gru", num_rnn_layers=2, skip_connections=False, weight_norm=False)
    options.update(kwargs)
    layer = FrameRNN(FRAME, RATIO, DIM, **options)
    layer.build()
    # A non-zero learned initial state makes the test see whether h0 is used.
    layer.h0.assign(np.random.default_rng(5).normal(size=layer.h0.shape).astype(np.float32))
    return layer




def test_frame_rnn_contract():
    layer = FrameRNN(FRAME, RATIO, DIM, rnn_type="lstm", num_rnn_layers=2,
                     skip_connections=True, weight_norm=True)
    upsampled = assert_layer_contract(layer, _frames())[0]
    assert upsampled.shape == (2, 5 * RATIO, DIM)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("skip_connections", [False, True])
def test_frame_rnn_steps_equal_sequence(rnn_type, skip_connections):
    layer = _layer(rnn_type=rnn_type, skip_connections=skip_connections, weight_norm=True)
    frames = _frames()
    conditioning = np.random.default_rng(1).normal(size=(2, 5, DIM)).astype(np.float32)
    upsampled, final = layer(frames, conditioning)
    state = layer.initial_state(2)
    for n in range(5):
        step, state = layer.step(frames[:, n], conditioning[:, n], state)
        np.testing.assert_allclose(step, upsampled[:, n * RATIO:(n + 1) * RATIO], atol=1e-5)
    for a, b in zip(tf.nest.flatten(final), tf.nest.flatten(state)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_frame_rnn_initial_state_is_learned_and_used():
    layer = _layer()
    frames = _frames()
    with tf.GradientTape() as tape:
        upsampled, _ = layer(frames)
        loss = tf.reduce_sum(upsampled ** 2)
    gradient = tape.gradient(loss, layer.h0)
    assert gradient is not None and np.abs(np.asarray(gradient)).sum() > 0
    zero_state = [tf.zeros((2, DIM))] * 2
    other, _ = layer(frames, initial_state=zero_state)
    assert np.abs(np.asarray(other) - np.asarray(upsampled)).max() > 1e-4


def test_frame_rnn_without_learn_h0_has_fixed_zero_state():
    layer = FrameRNN(FRAME, RATIO, DIM, learn_h0=False)
    layer.build()
    assert not layer.h0.trainable
    np.testing.assert_array_equal(layer.initial_state(3)[0], np.zeros((3, DIM)))


def test_frame_rnn_lstm_forget_bias_starts_at_reference_value():
    layer = FrameRNN(FRAME, RATIO, DIM, rnn_type="lstm")
    layer.build()
    bias = np.asarray(layer.biases[0])
    np.testing.assert_array_equal(bias[DIM:2 * DIM], LSTM_FORGET_BIAS)
    np.testing.assert_array_equal(bias[:DIM], 0.0)


def test_frame_rnn_skip_connections_sum_every_layer():
    layer = _layer(skip_connections=True, num_rnn_layers=3)
    # Layers above the first read [previous output, projected input].
    assert [int(k.shape[0]) for k in layer.kernels] == [DIM, 2 * DIM, 2 * DIM]


@pytest.mark.parametrize("kwargs, name", [
    (dict(frame_size=0), "frame_size"), (dict(upsample_ratio=-1), "upsample_ratio"),
    (dict(dim=0), "dim"), (dict(num_rnn_layers=0), "num_rnn_layers"),
    (dict(rnn_type="rnn"), "rnn_type")])
def test_frame_rnn_rejects_impossible_arguments(kwargs, name):
    options = dict(frame_size=FRAME, upsample_ratio=RATIO, dim=DIM)
    options.update(kwargs)
    with pytest.raises(ValueError, match=name):
        FrameRNN(**options)

"""GRU/LSTM step math against Keras's own cells, and the sequence runner against steps."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from samplenet.ops import recurrent

UNITS, INPUT, BATCH = 8, 5, 3


def _random(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_gru_step_equals_keras_gru_cell_reset_after():
    cell = keras.layers.GRUCell(UNITS, reset_after=True)
    x, h = _random(BATCH, INPUT), _random(BATCH, UNITS, seed=1)
    expected, _ = cell(x, [h])
    kernel, recurrent_kernel, bias = [np.asarray(w) for w in cell.weights]
    bias = bias + _random(*bias.shape, seed=2)  # non-zero biases exercise both bias rows
    cell.set_weights([kernel, recurrent_kernel, bias])
    expected, _ = cell(x, [h])
    output, _ = recurrent.gru_step(x @ kernel + bias[0], h, recurrent_kernel, bias[1])
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_lstm_step_equals_keras_lstm_cell():
    cell = keras.layers.LSTMCell(UNITS)
    x, h, c = _random(BATCH, INPUT), _random(BATCH, UNITS, seed=1), _random(BATCH, UNITS, seed=2)
    cell(x, [h, c])
    kernel, recurrent_kernel, bias = [np.asarray(w) for w in cell.weights]
    bias = _random(*bias.shape, seed=3)
    cell.set_weights([kernel, recurrent_kernel, bias])
    expected_h, (_, expected_c) = cell(x, [h, c])
    output, (_, new_c) = recurrent.lstm_step(x @ kernel + bias, (h, c), recurrent_kernel,
                                             np.zeros_like(bias))
    np.testing.assert_allclose(output, expected_h, atol=1e-5)
    np.testing.assert_allclose(new_c, expected_c, atol=1e-5)


@pytest.mark.parametrize("rnn_type", sorted(recurrent.RNN_TYPES))
def test_run_sequence_equals_repeated_steps(rnn_type):
    gates = recurrent.GATES[rnn_type] * UNITS
    x_proj = _random(BATCH, 6, gates)
    kernel, bias = _random(UNITS, gates, seed=1) * 0.3, _random(gates, seed=2)
    h0 = _random(BATCH, UNITS, seed=3)
    state = (h0, h0 * 0.5) if rnn_type == "lstm" else h0
    outputs, final = recurrent.run_sequence(rnn_type, tf.constant(x_proj), state, kernel, bias)
    step_state = state
    for t in range(6):
        output, step_state = recurrent.STEPS[rnn_type](x_proj[:, t], step_state, kernel, bias)
        np.testing.assert_allclose(outputs[:, t], output, atol=1e-6)
    np.testing.assert_allclose(tf.nest.flatten(final)[0], tf.nest.flatten(step_state)[0],
                               atol=1e-6)

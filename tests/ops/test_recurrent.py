"""GRU/LSTM step math against Keras's own cells, and the sequence runner (values and its
written-out gradient) against repeated steps."""
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


def _sequence_inputs(rnn_type, time=5, dtype=tf.float64):
    gates = recurrent.GATES[rnn_type] * UNITS
    x_proj = tf.constant(_random(BATCH, time, gates), dtype)
    kernel = tf.constant(_random(UNITS, gates, seed=1) * 0.5, dtype)
    bias = tf.constant(_random(gates, seed=2) * 0.2, dtype)
    h0 = tf.constant(_random(BATCH, UNITS, seed=3), dtype)
    state = (h0, tf.constant(_random(BATCH, UNITS, seed=4), dtype)) if rnn_type == "lstm" \
        else h0
    return x_proj, state, kernel, bias


def _by_steps(rnn_type, x_proj, state, kernel, bias):
    """The sequence as a Python loop of steps: automatic differentiation's reference."""
    outputs = []
    for t in range(x_proj.shape[1]):
        output, state = recurrent.STEPS[rnn_type](x_proj[:, t], state, kernel, bias)
        outputs.append(output)
    return tf.stack(outputs, axis=1), state


def _gradients(run, inputs, with_final_state, compiled):
    """Gradients of a random linear function of the outputs (and of the final state)."""
    def compute():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs, final = run(*inputs)
            loss = tf.reduce_sum(outputs * _random(*outputs.shape, seed=5))
            if with_final_state:
                for seed, tensor in enumerate(tf.nest.flatten(final)):
                    loss += tf.reduce_sum(tensor * _random(*tensor.shape, seed=6 + seed))
        return tape.gradient(loss, inputs)
    return tf.nest.flatten(tf.function(compute)() if compiled else compute())


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("with_final_state", [False, True], ids=["outputs", "outputs+final"])
@pytest.mark.parametrize("rnn_type", sorted(recurrent.RNN_TYPES))
def test_run_sequence_gradient_equals_autodiff_of_steps(rnn_type, with_final_state, compiled):
    inputs = list(_sequence_inputs(rnn_type))

    def sequence(*args):
        return recurrent.run_sequence(rnn_type, *args)

    def steps(*args):
        return _by_steps(rnn_type, *args)

    written = _gradients(sequence, inputs, with_final_state, compiled)
    reference = _gradients(steps, inputs, with_final_state, compiled=False)
    assert len(written) == len(reference) == len(tf.nest.flatten(inputs))
    for got, expected in zip(written, reference):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_run_sequence_gradient_flows_into_variables():
    """Kernels given as Keras variables (as FrameRNN does) get the written-out gradient."""
    x_proj, h0, kernel, bias = _sequence_inputs("gru", dtype=tf.float32)
    kernel_variable = keras.Variable(kernel.numpy())
    with tf.GradientTape() as tape:
        tape.watch(x_proj)
        outputs, _ = recurrent.run_sequence("gru", x_proj, h0, kernel_variable, bias)
        loss = tf.reduce_sum(outputs)
    d_kernel = tape.gradient(loss, kernel_variable.value)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        loss = tf.reduce_sum(_by_steps("gru", x_proj, h0, kernel, bias)[0])
    np.testing.assert_allclose(d_kernel, tape.gradient(loss, kernel), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rnn_type", sorted(recurrent.RNN_TYPES))
def test_keras_layout_gives_keras_layers_the_same_sequence(rnn_type):
    """samplenet's weights, with the biases in Keras's layout (``keras_bias``) and the kernels
    as they are, make Keras's GRU(reset_after=True) / LSTM layer compute ``run_layer``'s
    outputs and final state: the function Keras's cuDNN path computes from the same weights."""
    gates = recurrent.GATES[rnn_type] * UNITS
    x = _random(BATCH, 6, INPUT)
    kernel, bias = _random(INPUT, gates, seed=1) * 0.5, _random(gates, seed=2) * 0.5
    recurrent_kernel = _random(UNITS, gates, seed=3) * 0.5
    recurrent_bias = _random(gates, seed=4) * 0.5
    h0 = _random(BATCH, UNITS, seed=5)
    state = (h0, _random(BATCH, UNITS, seed=6)) if rnn_type == "lstm" else h0
    layer_class = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[rnn_type]
    layer = layer_class(UNITS, return_sequences=True, return_state=True, use_cudnn=False)
    layer.build(x.shape)
    layer.set_weights([kernel, recurrent_kernel,
                       np.asarray(recurrent.keras_bias(rnn_type, bias, recurrent_bias))])
    expected, *expected_final = layer(x, initial_state=list(tf.nest.flatten(state)))
    outputs, final = recurrent.run_layer(rnn_type, tf.constant(x), state, kernel, bias,
                                         recurrent_kernel, recurrent_bias, "samplenet")
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    for got, want in zip(tf.nest.flatten(final), expected_final):
        np.testing.assert_allclose(got, want, atol=1e-5)


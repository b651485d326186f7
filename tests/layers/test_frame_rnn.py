"""FrameRNN: contract, step-by-step equals the sequence pass, options that must combine, and
the cuDNN path equal to samplenet's op (values and gradients)."""
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src import backend as keras_backend

from samplenet.layers.frame_rnn import LSTM_FORGET_BIAS, FrameRNN
from samplenet.ops import recurrent
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


# ----- the cuDNN path ------------------------------------------------------------------------
def _keras_without_cudnn(rnn_type, calls):
    """A CPU stand-in for Keras's cuDNN function ``keras.src.backend.gru`` / ``lstm``: what
    Keras's own ``GRU`` / ``LSTM`` layer computes, cuDNN off, from the arguments the cuDNN
    function receives (bound to its real signature, so a call the real function would reject
    fails here too). cuDNN computes this same function on a GPU."""
    real = getattr(keras_backend, rnn_type)

    def run(*args, **kwargs):
        arguments = inspect.signature(real).bind(*args, **kwargs)
        arguments.apply_defaults()
        given = arguments.arguments
        assert given["mask"] is None and not given["go_backwards"] and not given["unroll"]
        assert not given["time_major"] and given["return_sequences"]
        if rnn_type == "gru":
            layer = keras.layers.GRU(given["recurrent_kernel"].shape[0],
                                     reset_after=given["reset_after"], use_cudnn=False,
                                     activation=given["activation"],
                                     recurrent_activation=given["recurrent_activation"],
                                     return_sequences=True, return_state=True)
            states = [given["initial_state"]]
        else:
            layer = keras.layers.LSTM(given["recurrent_kernel"].shape[0], use_cudnn=False,
                                      activation=given["activation"],
                                      recurrent_activation=given["recurrent_activation"],
                                      return_sequences=True, return_state=True)
            states = [given["initial_state_h"], given["initial_state_c"]]
        layer.build(given["inputs"].shape)
        (outputs, *final), _ = layer.stateless_call(
            [given[variable.name] for variable in layer.trainable_variables],
            [variable.value for variable in layer.non_trainable_variables],
            given["inputs"], initial_state=states)
        calls.append(rnn_type)
        return outputs[:, -1], outputs, final

    return run


def _randomize(layer, seed=7):
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(0.5 * rng.normal(size=weight.shape).astype(np.float32))


def _pass_and_gradients(layer, frames, conditioning, state):
    """Outputs, final state and the gradients of a random linear function of both with respect
    to the inputs, the initial state and every trainable weight."""
    watched = [frames, conditioning, *tf.nest.flatten(state)]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        upsampled, final = layer(frames, conditioning, initial_state=state)
        loss = 0.0
        for seed, tensor in enumerate([upsampled, *tf.nest.flatten(final)]):
            loss += tf.reduce_sum(tensor * np.random.default_rng(seed).normal(
                size=tensor.shape).astype(np.float32))
    rnn_weights = layer.kernels + layer.biases + layer.recurrent_kernels \
        + layer.recurrent_biases
    gradients = tape.gradient(loss, watched + rnn_weights + layer.trainable_weights)
    assert all(gradient is not None for gradient in gradients[:len(watched) + len(rnn_weights)])
    return [upsampled, *tf.nest.flatten(final)], gradients


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("num_rnn_layers, skip_connections", [(1, False), (2, False),
                                                                (2, True)])
def test_frame_rnn_cudnn_path_equals_samplenet_path(rnn_type, num_rnn_layers,
                                                     skip_connections, monkeypatch):
    """The cuDNN path hands FrameRNN's weights to Keras's cuDNN function; on the CPU, Keras's
    generic GRU/LSTM computes from them what cuDNN would: outputs, final states and gradients
    (inputs, carried initial state, every weight) must equal samplenet's written-out op."""
    calls = []
    monkeypatch.setattr(keras_backend, rnn_type, _keras_without_cudnn(rnn_type, calls))
    layer = _layer(rnn_type=rnn_type, num_rnn_layers=num_rnn_layers,
                   skip_connections=skip_connections)
    _randomize(layer)
    frames = tf.constant(_frames())
    conditioning = tf.constant(np.random.default_rng(1).normal(size=(2, 5, DIM)), tf.float32)
    carried = tf.nest.map_structure(
        lambda tensor: tf.constant(np.random.default_rng(2).normal(size=tensor.shape),
                                   tf.float32), layer.initial_state(2))
    results = {}
    for implementation in ("samplenet", "cudnn"):
        layer.rnn_implementation = implementation
        results[implementation] = _pass_and_gradients(layer, frames, conditioning, carried)
    assert calls == [rnn_type] * num_rnn_layers  # every layer went through the cuDNN function
    (outputs, gradients), (expected_outputs, expected_gradients) = results["cudnn"], \
        results["samplenet"]
    for got, expected in zip(outputs, expected_outputs):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert len(gradients) == len(expected_gradients)
    for got, expected in zip(gradients, expected_gradients):
        assert (got is None) == (expected is None)
        if got is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_frame_rnn_auto_runs_samplenet_op_without_gpu_and_cudnn_raises():
    frames = _frames()
    layer = _layer()
    assert layer.rnn_implementation == "auto" and layer.supports_jit
    expected, _ = layer(frames)
    layer.rnn_implementation = "samplenet"
    np.testing.assert_array_equal(layer(frames)[0], expected)
    layer.rnn_implementation = "cudnn"
    assert not layer.supports_jit
    with pytest.raises(ValueError, match="rnn_implementation='cudnn'"):
        layer(frames)


def test_frame_rnn_auto_falls_back_where_keras_cannot_run_cudnn(monkeypatch):
    """With a GPU visible, "auto" asks Keras for cuDNN; where Keras declines (here: it finds no
    GPU; or a Keras without the function), the written-out op runs instead."""
    frames = _frames()
    layer = _layer(rnn_implementation="samplenet")
    expected, _ = layer(frames)
    monkeypatch.setattr(recurrent, "gpu_visible", lambda: True)
    layer.rnn_implementation = "auto"
    assert not layer.supports_jit  # cuDNN's kernels do not compile with XLA
    np.testing.assert_array_equal(layer(frames)[0], expected)
    monkeypatch.delattr(keras_backend, "gru")
    np.testing.assert_array_equal(layer(frames)[0], expected)


def test_frame_rnn_auto_chooses_cudnn_only_off_the_cpu(monkeypatch):
    monkeypatch.setattr(recurrent, "gpu_visible", lambda: True)
    with tf.device("/CPU:0"):
        on_cpu = tf.zeros([2, 3, DIM])
    assert not recurrent.uses_cudnn("auto", on_cpu)
    assert not recurrent.uses_cudnn("samplenet")
    assert recurrent.uses_cudnn("auto") and recurrent.uses_cudnn("cudnn", on_cpu)

    @tf.function
    def placed(x):
        with tf.device("/CPU:0"):
            pinned = x + 1.0
        return recurrent.uses_cudnn("auto", x + 1.0), recurrent.uses_cudnn("auto", pinned)

    assert placed(tf.zeros([1])) == (True, False)


def test_frame_rnn_rejects_unknown_rnn_implementation():
    with pytest.raises(ValueError, match="rnn_implementation.*'keras'"):
        FrameRNN(FRAME, RATIO, DIM, rnn_implementation="keras")
    layer = _layer()
    with pytest.raises(ValueError, match="rnn_implementation"):
        layer.rnn_implementation = "cuda"


def test_frame_rnn_config_keeps_rnn_implementation():
    layer = FrameRNN(FRAME, RATIO, DIM, rnn_implementation="samplenet")
    assert FrameRNN.from_config(layer.get_config()).rnn_implementation == "samplenet"

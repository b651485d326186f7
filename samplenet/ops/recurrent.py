"""GRU and LSTM cell math as pure tensor functions, with a hand-written sequence gradient.

The parallel training pass (``run_sequence``) and the one-step generation path
(``*_step``) call the same cell functions, so teacher-forced and generated activations agree
to float rounding. Input projections ``x @ kernel + bias`` are computed by the caller for a
whole sequence at once (one large matmul); only the recurrent product runs per step.

``run_sequence`` has its own gradient (backpropagation through time written out, as cuDNN
does): the backward loop carries only the state gradient, one ``(batch, gates * units) @
(gates * units, units)`` product per step, and emits the gate gradients; the recurrent
kernel's gradient is then one ``(units, batch * time) @ (batch * time, gates * units)``
product. TensorFlow's automatic gradient of the scan instead accumulates the kernel gradient
as a rank-``batch`` update inside the loop, every step (measured on the peers' SampleRNN, one
batch-32 training step: the lowest tier's backward loops ran at 11 GFLOP/s, the rest of the
step at about 50).

Gate layout in the last axis of projections: GRU ``[update z, reset r, candidate]``
(``reset_after`` variant: the reset gate multiplies the recurrent candidate projection); LSTM
``[input i, forget f, candidate g, output o]``. These are the layouts of Keras's ``GRU``
(``reset_after=True``) and ``LSTM``, so ``run_layer`` can hand the same weights to the cuDNN
kernels Keras runs on a GPU (``IMPLEMENTATIONS``).
"""
import tensorflow as tf

RNN_TYPES = frozenset({"gru", "lstm"})
GATES = {"gru": 3, "lstm": 4}
# How ``run_layer`` runs a layer: "samplenet" (``run_sequence``, any device, compiles with
# XLA), "cudnn" (cuDNN through Keras's TensorFlow backend; needs a GPU), "auto" (cuDNN where
# the layer runs on a GPU, else "samplenet").
IMPLEMENTATIONS = frozenset({"auto", "samplenet", "cudnn"})


def _gru_cell(x_proj, state, recurrent_kernel, recurrent_bias):
    """One GRU step from ``state`` = ``(h,)``: ``((new_h,), saved)``; ``saved`` = ``(z, r,
    candidate, h_c)``, each ``(batch, units)``, what the backward step needs besides the
    previous state."""
    (h,) = state
    h_proj = tf.matmul(h, recurrent_kernel) + recurrent_bias
    x_z, x_r, x_c = tf.split(x_proj, 3, axis=-1)
    h_z, h_r, h_c = tf.split(h_proj, 3, axis=-1)
    z = tf.sigmoid(x_z + h_z)
    r = tf.sigmoid(x_r + h_r)
    candidate = tf.tanh(x_c + r * h_c)
    new_h = z * h + (1.0 - z) * candidate
    return (new_h,), (z, r, candidate, h_c)


def _gru_cell_backward(d_state, previous, saved):
    """Gradients of one GRU step from ``d_state`` = ``(d_h,)``, all gradient reaching its new
    state: ``(d_x_proj, d_h_proj, d_previous_direct)``, the input- and recurrent-projection
    gradients ``(batch, 3 * units)`` and the part of the previous state's gradient that
    bypasses the recurrent product, ``(d_h_previous,)``."""
    (d_h,), (h,) = d_state, previous
    z, r, candidate, h_c = saved
    d_pre_c = d_h * (1.0 - z) * (1.0 - tf.square(candidate))
    d_pre_z = d_h * (h - candidate) * z * (1.0 - z)
    d_pre_r = d_pre_c * h_c * r * (1.0 - r)
    d_x_proj = tf.concat([d_pre_z, d_pre_r, d_pre_c], axis=-1)
    d_h_proj = tf.concat([d_pre_z, d_pre_r, d_pre_c * r], axis=-1)
    return d_x_proj, d_h_proj, (d_h * z,)


def _lstm_cell(x_proj, state, recurrent_kernel, recurrent_bias):
    """One LSTM step from ``state`` = ``(h, c)``: ``((h, c), saved)``; ``saved`` = ``(i, f, g,
    o, tanh(c))`` after their nonlinearities, each ``(batch, units)``."""
    h, c = state
    gates = x_proj + tf.matmul(h, recurrent_kernel) + recurrent_bias
    i, f, g, o = tf.split(gates, 4, axis=-1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    c = f * c + i * g
    tanh_c = tf.tanh(c)
    return (o * tanh_c, c), (i, f, g, o, tanh_c)


def _lstm_cell_backward(d_state, previous, saved):
    """Gradients of one LSTM step, as ``_gru_cell_backward`` (``d_state`` = ``(d_h, d_c)``,
    ``previous`` = ``(h, c)``); the gates' gradient serves both projections, and only the cell
    state's gradient bypasses the recurrent product."""
    (d_h, d_c), (_, c_previous) = d_state, previous
    i, f, g, o, tanh_c = saved
    d_c = d_c + d_h * o * (1.0 - tf.square(tanh_c))
    d_gates = tf.concat([d_c * g * i * (1.0 - i), d_c * c_previous * f * (1.0 - f),
                         d_c * i * (1.0 - tf.square(g)), d_h * tanh_c * o * (1.0 - o)], axis=-1)
    return d_gates, d_gates, (tf.zeros_like(d_h), d_c * f)


# rnn_type -> (cell, its backward, number of tensors the cell saves for the backward)
CELLS = {"gru": (_gru_cell, _gru_cell_backward, 4), "lstm": (_lstm_cell, _lstm_cell_backward, 5)}


def gru_step(x_proj, state, recurrent_kernel, recurrent_bias):
    """One GRU step.

    Args:
      x_proj: ``(batch, 3 * units)`` input projection (with input bias).
      state: ``(batch, units)`` previous hidden state.
      recurrent_kernel: ``(units, 3 * units)``; recurrent_bias: ``(3 * units,)``.
    Returns:
      ``(output, new_state)``, both ``(batch, units)`` (the same tensor for a GRU).
    """
    (new_h,), _ = _gru_cell(x_proj, (state,), recurrent_kernel, recurrent_bias)
    return new_h, new_h


def lstm_step(x_proj, state, recurrent_kernel, recurrent_bias):
    """One LSTM step.

    Args:
      x_proj: ``(batch, 4 * units)`` input projection (with input bias).
      state: tuple ``(h, c)`` each ``(batch, units)``.
      recurrent_kernel: ``(units, 4 * units)``; recurrent_bias: ``(4 * units,)``.
    Returns:
      ``(h, (h, c))``.
    """
    (h, c), _ = _lstm_cell(x_proj, state, recurrent_kernel, recurrent_bias)
    return h, (h, c)


STEPS = {"gru": gru_step, "lstm": lstm_step}


def _kernel_gradients(previous_h, d_h_proj):
    """Recurrent kernel and bias gradients from time-major ``previous_h`` ``(time, batch,
    units)`` and ``d_h_proj`` ``(time, batch, gates * units)``: one product over all steps."""
    units, gates = previous_h.shape[-1], d_h_proj.shape[-1]
    flat_d = tf.reshape(d_h_proj, [-1, gates])
    return (tf.matmul(tf.reshape(previous_h, [-1, units]), flat_d, transpose_a=True),
            tf.reduce_sum(flat_d, axis=0))


def _or_zeros(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


def _add_to_last(over_time, last):
    """``over_time`` ``(time, ...)`` with ``last`` added to its last step (a concatenation:
    ``tensor_scatter_nd_add`` has no float16 or bfloat16 GPU kernel)."""
    return tf.concat([over_time[:-1], over_time[-1:] + last[None]], axis=0)


def _sequence(rnn_type, x_proj, initial, recurrent_kernel, recurrent_bias):
    """Time-major GRU or LSTM with the written-out gradient: ``x_proj`` ``(time, batch, gates *
    units)``, ``initial`` a tuple of ``(batch, units)`` state tensors (``h`` first) ->
    ``(outputs (time, batch, units), *final state tensors)``."""
    cell, cell_backward, num_saved = CELLS[rnn_type]
    size = len(initial)

    @tf.custom_gradient
    def sequence(x_proj, kernel, bias, *initial):
        def step(carry, x_t):
            state, saved = cell(x_t, carry[:size], kernel, bias)
            return (*state, *saved)

        zeros = tf.zeros_like(initial[0])
        results = tf.scan(step, x_proj, initializer=(*initial, *[zeros] * num_saved))
        states, saved = results[:size], results[size:]
        previous = [tf.concat([first[None], over_time[:-1]], axis=0)
                    for first, over_time in zip(initial, states)]

        def grad(d_outputs, *d_finals):
            # The gradient reaching each state tensor at every step: the outputs' (h only)
            # plus, at the last step, the final state's.
            d_states = [_add_to_last(_or_zeros(d_over_time, over_time), _or_zeros(d_final, first))
                        for d_over_time, d_final, over_time, first
                        in zip([d_outputs] + [None] * (size - 1), d_finals, states, initial)]
            kernel_t = tf.transpose(kernel)  # once: a transposed product per step is slow here

            def back(carry, inputs):
                d_here, step_previous = inputs[:size], inputs[size:2 * size]
                d_state = [next_step + here for next_step, here in zip(carry[:size], d_here)]
                d_x, d_h_proj, d_direct = cell_backward(d_state, step_previous,
                                                        inputs[2 * size:])
                d_previous_h = d_direct[0] + tf.matmul(d_h_proj, kernel_t)
                return (d_previous_h, *d_direct[1:], d_x, d_h_proj)

            gate_zeros = tf.zeros_like(x_proj[0])
            results = tf.scan(back, (*d_states, *previous, *saved), reverse=True,
                              initializer=(*[tf.zeros_like(first) for first in initial],
                                           gate_zeros, gate_zeros))
            d_x, d_h_proj = results[size:]
            return (d_x, *_kernel_gradients(previous[0], d_h_proj),
                    *[d_previous[0] for d_previous in results[:size]])

        return (states[0], *[over_time[-1] for over_time in states]), grad

    return sequence(x_proj, recurrent_kernel, recurrent_bias, *initial)


def run_sequence(rnn_type, x_proj, initial_state, recurrent_kernel, recurrent_bias):
    """Run a GRU or LSTM over a whole sequence.

    Args:
      rnn_type: ``"gru"`` or ``"lstm"``.
      x_proj: ``(batch, time, gates * units)`` input projections of every step.
      initial_state: ``(batch, units)`` (GRU) or a tuple ``(h, c)`` (LSTM).
      recurrent_kernel: ``(units, gates * units)``; recurrent_bias: ``(gates * units,)``
        (variables or tensors; read once, in ``x_proj``'s dtype).
    Returns:
      ``(outputs, final_state)``: outputs ``(batch, time, units)``, final state as given.
    """
    kernel = tf.cast(recurrent_kernel, x_proj.dtype)
    bias = tf.cast(recurrent_bias, x_proj.dtype)
    time_major = tf.transpose(x_proj, [1, 0, 2])
    initial = tuple(initial_state) if rnn_type == "lstm" else (initial_state,)
    outputs, *final = _sequence(rnn_type, time_major, initial, kernel, bias)
    final_state = tuple(final) if rnn_type == "lstm" else final[0]
    return tf.transpose(outputs, [1, 0, 2]), final_state


def gpu_visible():
    """True when TensorFlow sees a GPU (cuDNN's recurrent kernels run only there)."""
    return bool(tf.config.list_logical_devices("GPU"))


def uses_cudnn(implementation, inputs=None):
    """Whether ``run_layer`` runs ``implementation`` on cuDNN: always for ``"cudnn"``; for
    ``"auto"`` when TensorFlow sees a GPU and ``inputs`` (if given) is not placed on a CPU
    (an explicit ``tf.device("/CPU:0")`` scope, or an eager tensor in host memory)."""
    if implementation == "cudnn":
        return True
    if implementation == "samplenet" or not gpu_visible():
        return False
    device = getattr(inputs, "device", None) or ""
    return tf.DeviceSpec.from_string(device).device_type != "CPU"


def keras_bias(rnn_type, bias, recurrent_bias):
    """The biases in the layout of Keras's ``GRU(reset_after=True)`` (``(2, 3 * units)``: input
    bias, recurrent bias) or ``LSTM`` (``(4 * units,)``: their sum; an LSTM adds both biases to
    the same pre-activation). Kernels need no change: FrameRNN's ``(input_dim, gates * units)``
    and ``(units, gates * units)`` with the gate order of this module are Keras's."""
    if rnn_type == "gru":
        return tf.stack([bias, recurrent_bias])
    return bias + recurrent_bias


def _keras_cudnn(rnn_type, inputs, initial_state, kernel, recurrent_kernel, bias):
    """One layer on cuDNN through a Keras-internal function: ``keras.src.backend.gru`` /
    ``lstm``, which ``keras.layers.GRU`` / ``LSTM`` call with cuDNN-compatible settings (tanh,
    sigmoid, not unrolled, ``reset_after``; no mask) and which lay the weights out for
    TensorFlow's ``CudnnRNNV3`` (Keras 3.15). Weights in Keras's layout (``keras_bias``).

    Returns ``(outputs (batch, time, units), final state)``. Raises ``NotImplementedError``
    where cuDNN cannot run (TensorFlow sees no GPU) or this Keras lacks the functions (the
    caller falls back to ``run_sequence``).
    """
    try:
        from keras.src import backend as keras_backend
        run = {"gru": keras_backend.gru, "lstm": keras_backend.lstm}[rnn_type]
    except (ImportError, AttributeError) as error:
        raise NotImplementedError(f"Keras has no cuDNN recurrent function here ({error})") \
            from None
    settings = dict(mask=None, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias,
                    activation=tf.tanh, recurrent_activation=tf.sigmoid, return_sequences=True)
    if rnn_type == "gru":
        _, outputs, (state,) = run(inputs, initial_state, reset_after=True, **settings)
        return outputs, state
    _, outputs, (h, c) = run(inputs, *initial_state, **settings)
    return outputs, (h, c)


def run_layer(rnn_type, inputs, initial_state, kernel, bias, recurrent_kernel, recurrent_bias,
              implementation="auto"):
    """Run one GRU or LSTM layer over a sequence of inputs.

    ``"samplenet"`` projects every step's input at once (``inputs @ kernel + bias``) and runs
    ``run_sequence``; ``"cudnn"`` hands the same weights to cuDNN (``keras_bias``,
    ``_keras_cudnn``): the same function, computed by cuDNN's fused kernels, forward and
    backward; ``"auto"`` chooses with ``uses_cudnn``.

    Args:
      rnn_type: ``"gru"`` or ``"lstm"``.
      inputs: ``(batch, time, input_dim)``.
      initial_state: ``(batch, units)`` (GRU) or a tuple ``(h, c)`` (LSTM), in ``inputs``'
        dtype.
      kernel: ``(input_dim, gates * units)``; bias: ``(gates * units,)``;
        recurrent_kernel: ``(units, gates * units)``; recurrent_bias: ``(gates * units,)``
        (variables or tensors; read in ``inputs``' dtype).
      implementation: one of ``IMPLEMENTATIONS``.
    Returns:
      ``(outputs (batch, time, units), final_state)``, the state as given.
    Raises:
      ValueError: ``implementation="cudnn"`` where cuDNN cannot run.
    """
    kernel, bias, recurrent_kernel, recurrent_bias = [
        tf.cast(weight, inputs.dtype)
        for weight in (kernel, bias, recurrent_kernel, recurrent_bias)]
    if uses_cudnn(implementation, inputs):
        try:
            return _keras_cudnn(rnn_type, inputs, initial_state, kernel, recurrent_kernel,
                                keras_bias(rnn_type, bias, recurrent_bias))
        except NotImplementedError as error:
            if implementation == "cudnn":
                reason = str(error) or "cuDNN runs only on a GPU, and TensorFlow sees none"
                raise ValueError(f"rnn_implementation='cudnn' cannot run here: {reason}") \
                    from None
    x_proj = tf.tensordot(inputs, kernel, axes=1) + bias
    return run_sequence(rnn_type, x_proj, initial_state, recurrent_kernel, recurrent_bias)

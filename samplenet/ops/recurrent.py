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
``[input i, forget f, candidate g, output o]``.
"""
import tensorflow as tf

RNN_TYPES = frozenset({"gru", "lstm"})
GATES = {"gru": 3, "lstm": 4}


def _gru_cell(x_proj, h, recurrent_kernel, recurrent_bias):
    """One GRU step: ``(new_h, saved)``; ``saved`` = ``(z, r, candidate, h_c)``, each
    ``(batch, units)``, what the backward step needs besides the previous state."""
    h_proj = tf.matmul(h, recurrent_kernel) + recurrent_bias
    x_z, x_r, x_c = tf.split(x_proj, 3, axis=-1)
    h_z, h_r, h_c = tf.split(h_proj, 3, axis=-1)
    z = tf.sigmoid(x_z + h_z)
    r = tf.sigmoid(x_r + h_r)
    candidate = tf.tanh(x_c + r * h_c)
    new_h = z * h + (1.0 - z) * candidate
    return new_h, (z, r, candidate, h_c)


def _gru_cell_backward(d_h, h, saved):
    """Gradients of one GRU step from ``d_h`` ``(batch, units)`` (all gradient reaching the new
    state): ``(d_x_proj, d_h_proj, d_h_direct)``, the input- and recurrent-projection gradients
    ``(batch, 3 * units)`` and the part of the previous state's gradient that bypasses the
    recurrent product."""
    z, r, candidate, h_c = saved
    d_pre_c = d_h * (1.0 - z) * (1.0 - tf.square(candidate))
    d_pre_z = d_h * (h - candidate) * z * (1.0 - z)
    d_pre_r = d_pre_c * h_c * r * (1.0 - r)
    d_x_proj = tf.concat([d_pre_z, d_pre_r, d_pre_c], axis=-1)
    d_h_proj = tf.concat([d_pre_z, d_pre_r, d_pre_c * r], axis=-1)
    return d_x_proj, d_h_proj, d_h * z


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


def _lstm_cell_backward(d_h, d_c, c_prev, saved):
    """Gradients of one LSTM step from ``d_h`` and ``d_c`` reaching its new state: ``(d_gates
    (batch, 4 * units), d_c_prev)`` (the gates' gradient serves both projections)."""
    i, f, g, o, tanh_c = saved
    d_c = d_c + d_h * o * (1.0 - tf.square(tanh_c))
    d_gates = tf.concat([d_c * g * i * (1.0 - i), d_c * c_prev * f * (1.0 - f),
                         d_c * i * (1.0 - tf.square(g)), d_h * tanh_c * o * (1.0 - o)], axis=-1)
    return d_gates, d_c * f


def gru_step(x_proj, state, recurrent_kernel, recurrent_bias):
    """One GRU step.

    Args:
      x_proj: ``(batch, 3 * units)`` input projection (with input bias).
      state: ``(batch, units)`` previous hidden state.
      recurrent_kernel: ``(units, 3 * units)``; recurrent_bias: ``(3 * units,)``.
    Returns:
      ``(output, new_state)``, both ``(batch, units)`` (the same tensor for a GRU).
    """
    new_h, _ = _gru_cell(x_proj, state, recurrent_kernel, recurrent_bias)
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


def _gru_sequence(x_proj, h0, recurrent_kernel, recurrent_bias):
    """Time-major GRU: ``x_proj`` ``(time, batch, 3 * units)``, ``h0`` ``(batch, units)`` ->
    ``(outputs (time, batch, units), final h)``, with the written-out gradient."""

    @tf.custom_gradient
    def sequence(x_proj, h0, kernel, bias):
        def step(carry, x_t):
            new_h, saved = _gru_cell(x_t, carry[0], kernel, bias)
            return (new_h, *saved)

        zeros = tf.zeros_like(h0)
        outputs, *saved = tf.scan(step, x_proj, initializer=(h0, zeros, zeros, zeros, zeros))
        previous = tf.concat([h0[None], outputs[:-1]], axis=0)

        def grad(d_outputs, d_final):
            d_outputs = _or_zeros(d_outputs, outputs)
            d_outputs = tf.tensor_scatter_nd_add(d_outputs, [[tf.shape(outputs)[0] - 1]],
                                                 _or_zeros(d_final, h0)[None])

            def back(carry, inputs):
                d_h_out, h, *step_saved = inputs
                d_x, d_h_proj, d_direct = _gru_cell_backward(carry[0] + d_h_out, h, step_saved)
                d_previous = d_direct + tf.matmul(d_h_proj, kernel_t)
                return d_previous, d_x, d_h_proj

            kernel_t = tf.transpose(kernel)  # once: a transposed product per step is slow here
            gate_zeros = tf.zeros_like(x_proj[0])
            d_previous, d_x, d_h_proj = tf.scan(
                back, (d_outputs, previous, *saved), reverse=True,
                initializer=(tf.zeros_like(h0), gate_zeros, gate_zeros))
            return (d_x, d_previous[0], *_kernel_gradients(previous, d_h_proj))

        return (outputs, outputs[-1]), grad

    return sequence(x_proj, h0, recurrent_kernel, recurrent_bias)


def _lstm_sequence(x_proj, state, recurrent_kernel, recurrent_bias):
    """Time-major LSTM: ``x_proj`` ``(time, batch, 4 * units)``, ``state`` ``(h0, c0)`` ->
    ``(outputs (time, batch, units), (final h, final c))``, with the written-out gradient."""

    @tf.custom_gradient
    def sequence(x_proj, h0, c0, kernel, bias):
        def step(carry, x_t):
            (h, c), saved = _lstm_cell(x_t, carry[:2], kernel, bias)
            return (h, c, *saved)

        zeros = tf.zeros_like(h0)
        outputs, cells, *saved = tf.scan(step, x_proj, initializer=(h0, c0) + (zeros,) * 5)
        previous_h = tf.concat([h0[None], outputs[:-1]], axis=0)
        previous_c = tf.concat([c0[None], cells[:-1]], axis=0)

        def grad(d_outputs, d_final_h, d_final_c):
            last = [[tf.shape(outputs)[0] - 1]]
            d_outputs = tf.tensor_scatter_nd_add(_or_zeros(d_outputs, outputs), last,
                                                 _or_zeros(d_final_h, h0)[None])
            d_cells = tf.tensor_scatter_nd_add(tf.zeros_like(cells), last,
                                               _or_zeros(d_final_c, c0)[None])

            def back(carry, inputs):
                d_h_next, d_c_next, _ = carry
                d_h_out, d_c_out, c_prev, *step_saved = inputs
                d_gates, d_c_prev = _lstm_cell_backward(d_h_next + d_h_out, d_c_next + d_c_out,
                                                        c_prev, step_saved)
                return tf.matmul(d_gates, kernel_t), d_c_prev, d_gates

            kernel_t = tf.transpose(kernel)
            d_h0, d_c0, d_gates = tf.scan(
                back, (d_outputs, d_cells, previous_c, *saved), reverse=True,
                initializer=(tf.zeros_like(h0), tf.zeros_like(c0), tf.zeros_like(x_proj[0])))
            return (d_gates, d_h0[0], d_c0[0], *_kernel_gradients(previous_h, d_gates))

        return (outputs, outputs[-1], cells[-1]), grad

    return sequence(x_proj, state[0], state[1], recurrent_kernel, recurrent_bias)


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
    if rnn_type == "lstm":
        outputs, final_h, final_c = _lstm_sequence(time_major, initial_state, kernel, bias)
        final_state = (final_h, final_c)
    else:
        outputs, final_state = _gru_sequence(time_major, initial_state, kernel, bias)
    return tf.transpose(outputs, [1, 0, 2]), final_state

"""GRU and LSTM cell math as pure tensor functions.

The parallel training pass (``run_sequence``) and the one-step generation path
(``*_step``) call the same step functions, so teacher-forced and generated activations agree
to float rounding. Input projections ``x @ kernel + bias`` are computed by the caller for a
whole sequence at once (one large matmul); only the recurrent product runs per step.

Gate layout in the last axis of projections: GRU ``[update z, reset r, candidate]``
(``reset_after`` variant: the reset gate multiplies the recurrent candidate projection); LSTM
``[input i, forget f, candidate g, output o]``.
"""
import tensorflow as tf

RNN_TYPES = frozenset({"gru", "lstm"})
GATES = {"gru": 3, "lstm": 4}


def gru_step(x_proj, state, recurrent_kernel, recurrent_bias):
    """One GRU step.

    Args:
      x_proj: ``(batch, 3 * units)`` input projection (with input bias).
      state: ``(batch, units)`` previous hidden state.
      recurrent_kernel: ``(units, 3 * units)``; recurrent_bias: ``(3 * units,)``.
    Returns:
      ``(output, new_state)``, both ``(batch, units)`` (the same tensor for a GRU).
    """
    h_proj = tf.matmul(state, recurrent_kernel) + recurrent_bias
    x_z, x_r, x_c = tf.split(x_proj, 3, axis=-1)
    h_z, h_r, h_c = tf.split(h_proj, 3, axis=-1)
    z = tf.sigmoid(x_z + h_z)
    r = tf.sigmoid(x_r + h_r)
    candidate = tf.tanh(x_c + r * h_c)
    new_h = z * state + (1.0 - z) * candidate
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
    h, c = state
    gates = x_proj + tf.matmul(h, recurrent_kernel) + recurrent_bias
    i, f, g, o = tf.split(gates, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    h = tf.sigmoid(o) * tf.tanh(c)
    return h, (h, c)


STEPS = {"gru": gru_step, "lstm": lstm_step}


def run_sequence(rnn_type, x_proj, initial_state, recurrent_kernel, recurrent_bias):
    """Run a GRU or LSTM over a whole sequence.

    Args:
      rnn_type: ``"gru"`` or ``"lstm"``.
      x_proj: ``(batch, time, gates * units)`` input projections of every step.
      initial_state: ``(batch, units)`` (GRU) or a tuple ``(h, c)`` (LSTM).
    Returns:
      ``(outputs, final_state)``: outputs ``(batch, time, units)``, final state as given.
    """
    step = STEPS[rnn_type]

    def scan_step(carry, x_t):
        _, state = carry
        output, state = step(x_t, state, recurrent_kernel, recurrent_bias)
        return output, state

    time_major = tf.transpose(x_proj, [1, 0, 2])
    first_h = initial_state[0] if rnn_type == "lstm" else initial_state
    outputs, final_states = tf.scan(scan_step, time_major,
                                    initializer=(tf.zeros_like(first_h), initial_state))
    if rnn_type == "lstm":
        final_state = (final_states[0][-1], final_states[1][-1])
    else:
        final_state = final_states[-1]
    return tf.transpose(outputs, [1, 0, 2]), final_state

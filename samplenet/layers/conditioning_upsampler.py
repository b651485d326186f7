"""Upsample frame-rate conditioning features to the sample rate with learned transposed convs."""
import keras
import tensorflow as tf

from samplenet.validation import check_int, check_positive_int


def factorize_hop(hop, max_factor=16):
    """Split ``hop`` into factors ``<= max_factor`` whose product is ``hop``, largest first.

    ``(1,)`` for a hop of 1. ``ValueError`` if ``hop`` has a prime factor above ``max_factor``.
    """
    check_positive_int("hop", hop)
    check_int("max_factor", max_factor, 2)
    primes, rest, divisor = [], hop, 2
    while rest > 1:
        while rest % divisor == 0:
            primes.append(divisor)
            rest //= divisor
        divisor += 1
    if primes and max(primes) > max_factor:
        raise ValueError(f"hop {hop} has the prime factor {max(primes)} > max_factor "
                         f"{max_factor}; choose a hop whose prime factors are <= {max_factor}")
    factors = []
    for prime in sorted(primes, reverse=True):  # first-fit decreasing
        for i, factor in enumerate(factors):
            if factor * prime <= max_factor:
                factors[i] = factor * prime
                break
        else:
            factors.append(prime)
    return tuple(sorted(factors, reverse=True)) or (1,)


@keras.saving.register_keras_serializable(package="samplenet")
class ConditioningUpsampler(keras.layers.Layer):
    """A stack of transposed 1-D convolutions whose strides multiply to ``hop``.

    Each stage is a transposed convolution with kernel size equal to its stride ``s``: frame
    ``i`` becomes the ``s`` outputs ``i*s + k = x[i] @ kernel[k] + bias``. Stages are joined by
    leaky ReLUs (slope 0.4). Because kernels do not overlap, output sample ``j`` depends only on
    frame ``j // hop``: features of frame ``i`` condition samples ``[i*hop, (i+1)*hop)``, and
    upsampling a slice of frames gives exactly the matching slice of samples (chunked
    generation equals whole-sequence generation).

    Args:
      channels: output channels (every stage has this many).
      hop: samples per frame.
      max_factor: largest stride of one stage (see ``factorize_hop``).

    Call: ``(batch, frames, in_channels)`` -> ``(batch, frames * hop, channels)``.
    """

    def __init__(self, channels, hop, max_factor=16, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("channels", channels)
        self.factors = factorize_hop(hop, max_factor)
        self.channels = channels
        self.hop = hop
        self.max_factor = max_factor

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        self.kernels, self.biases = [], []
        for i, factor in enumerate(self.factors):
            self.kernels.append(self.add_weight(name=f"kernel_{i}",
                                                shape=(factor, in_channels, self.channels),
                                                initializer="glorot_uniform"))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(self.channels,),
                                               initializer="zeros"))
            in_channels = self.channels

    def call(self, inputs):
        outputs = inputs
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            if i:
                outputs = tf.nn.leaky_relu(outputs, alpha=0.4)
            batch, frames = tf.shape(outputs)[0], tf.shape(outputs)[1]
            outputs = tf.einsum("bfc,kcd->bfkd", outputs, kernel) + bias
            outputs = tf.reshape(outputs, (batch, frames * kernel.shape[0], self.channels))
        return outputs

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else input_shape[1] * self.hop
        return (input_shape[0], frames, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, hop=self.hop, max_factor=self.max_factor)
        return config

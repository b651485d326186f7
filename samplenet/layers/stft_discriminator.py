"""Multi-scale STFT discriminator (EnCodec, Défossez et al. 2022): 2-D convolutions over the
complex STFT (real and imaginary parts as two channels) at several window lengths."""
import keras
import tensorflow as tf
from samplenet.validation import check_positive_int

DISCRIMINATOR_WINDOWS = (2048, 1024, 512, 256, 128)
TIME_DILATIONS = (1, 2, 4)     # dilation along time of the three frequency-downsampling convs
LEAKY_SLOPE = 0.2



@keras.saving.register_keras_serializable(package="samplenet")
class STFTDiscriminator(keras.layers.Layer):
    """One scale: complex STFT (periodic Hann window of ``window_length``, hop
    ``window_length // 4``, no padding, scaled by ``1 / sqrt(window_length)``) as a
    ``(batch, frames, bins, 2)`` image; a ``(3, 9)`` convolution; three ``(3, 9)`` convolutions
    dilated along time by 1, 2, 4, each followed by halving the frequency axis; a ``(3, 3)``
    convolution; LeakyReLU(0.2) after each; a ``(3, 3)`` convolution to one logit channel.

    Args:
      window_length: STFT window (and FFT) length in samples.
      channels: channels of the hidden convolutions.
    Call: audio ``(batch, time)``, ``time >= window_length`` -> list of the five hidden
    feature maps followed by the logits ``(batch, frames, bins', 1)``.
    """

    def __init__(self, window_length, channels=32, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("window_length", window_length)
        check_positive_int("channels", channels)
        if window_length < 4:
            raise ValueError(f"window_length must be >= 4, got {window_length!r}")
        self.window_length = window_length
        self.channels = channels
        self.hidden = [keras.layers.Conv2D(channels, (3, 9), padding="same", name="conv_0")]
        self.hidden += [keras.layers.Conv2D(channels, (3, 9), padding="same",
                                            dilation_rate=(d, 1), name=f"conv_{k + 1}")
                        for k, d in enumerate(TIME_DILATIONS)]
        self.hidden.append(keras.layers.Conv2D(channels, (3, 3), padding="same",
                                               name=f"conv_{len(TIME_DILATIONS) + 1}"))
        self.logits = keras.layers.Conv2D(1, (3, 3), padding="same", name="logits")

    def build(self, input_shape=None):
        self.hidden[0].build((None, None, None, 2))
        for layer in self.hidden[1:]:
            layer.build((None, None, None, self.channels))
        self.logits.build((None, None, None, self.channels))

    def call(self, audio):
        spectrum = tf.signal.stft(tf.cast(audio, tf.float32), self.window_length,
                                  self.window_length // 4, fft_length=self.window_length,
                                  window_fn=tf.signal.hann_window, pad_end=False)
        spectrum = spectrum / tf.cast(tf.sqrt(float(self.window_length)), tf.complex64)
        hidden = tf.stack([tf.math.real(spectrum), tf.math.imag(spectrum)], axis=-1)
        hidden = tf.cast(hidden, self.compute_dtype)
        features = []
        for index, layer in enumerate(self.hidden):
            hidden = layer(hidden)
            if 1 <= index <= len(TIME_DILATIONS):
                hidden = hidden[:, :, ::2]
            hidden = tf.nn.leaky_relu(hidden, LEAKY_SLOPE)
            features.append(hidden)
        return features + [self.logits(hidden)]

    def get_config(self):
        return {**super().get_config(), "window_length": self.window_length,
                "channels": self.channels}


@keras.saving.register_keras_serializable(package="samplenet")
class MultiScaleSTFTDiscriminator(keras.layers.Layer):
    """One ``STFTDiscriminator`` per window length.

    Args:
      window_lengths: STFT windows in samples (default 2048, 1024, 512, 256, 128).
      channels: hidden channels of each scale.
    Call: audio ``(batch, time)``, ``time >= max(window_lengths)`` -> one list per scale of
    feature maps with the logits last (see ``STFTDiscriminator``).
    """

    def __init__(self, window_lengths=DISCRIMINATOR_WINDOWS, channels=32, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(window_lengths, (list, tuple)) or not window_lengths:
            raise ValueError(f"window_lengths must be a non-empty list, got {window_lengths!r}")
        self.window_lengths = tuple(window_lengths)
        self.channels = channels
        self.scales = [STFTDiscriminator(w, channels, name=f"stft_{w}")
                       for w in self.window_lengths]

    def build(self, input_shape=None):
        for scale in self.scales:
            scale.build(input_shape)

    def call(self, audio):
        return [scale(audio) for scale in self.scales]

    def get_config(self):
        return {**super().get_config(), "window_lengths": list(self.window_lengths),
                "channels": self.channels}

"""SEANet encoder and decoder of SoundStream (Zeghidour et al., 2021): causal convolutions,
ELU, residual units of dilations 1, 3, 9, strided convolutions down and transposed
convolutions up; no normalisation (SoundStream) or, with ``weight_norm``, weight normalisation
of every convolution (EnCodec). With ``zero_init_residual`` every residual unit starts as the
identity (its last convolution starts at zero, as in SkipInit / Fixup): un-normalised stacks of
residual units otherwise grow the signal at each unit (measured on builtin:plucked at channels
8: a decoder output std of 0.45 at initialisation for inputs of std 0.06, 0.0016 with the
option), and training first spends a hundred-odd steps silencing that noise.

Every convolution here is *streamable*: ``call(x)`` processes a whole signal with zero left
context, ``stream(x, state)`` processes one chunk given the left context carried from the
previous chunk and returns the new one. Starting from ``initial_state(batch_size)`` (zeros),
processing a signal chunk by chunk gives exactly the output of processing it whole, provided
each chunk length is a multiple of the layer's total stride. State is a (nested) list of
tensors; ``call`` is ``stream`` from the initial state, so the two cannot drift apart.

Alignment: a strided causal convolution of stride ``s`` maps input samples
``[i * s, (i + 1) * s)`` to output frame ``i``, which depends on no input at or after
``(i + 1) * s``. The encoder thus maps hop ``f`` (samples ``[f * hop, (f + 1) * hop)``,
``hop = prod(strides)``) to latent frame ``f``, and the decoder maps latent frame ``f`` to
output samples ``[f * hop, (f + 1) * hop)``, which depend on no frame after ``f``.

These convolutions are local to the codec (the streaming state API is what they add); the
WaveNet ``CausalConv1D`` is the generation-cache counterpart.
"""
import math

import keras
import tensorflow as tf
from samplenet.validation import check_bool, check_positive_int

DILATIONS = (1, 3, 9)          # dilations of the three residual units of a block
KERNEL_SIZE = 7                # first and last convolutions, and residual units
LATENT_KERNEL_SIZE = 3         # encoder's final convolution to the latent



def _add_kernel(layer, shape, norm_axes):
    """Create ``layer.kernel`` (glorot uniform) and, with ``layer.weight_norm``, a per-filter
    ``layer.kernel_scale`` equal to the initial kernel's norm over ``norm_axes`` (so the
    initial function is the same with and without weight normalisation)."""
    layer.kernel = layer.add_weight(name="kernel", shape=shape, initializer="glorot_uniform")
    if layer.weight_norm:
        norms = tf.norm(tf.convert_to_tensor(layer.kernel), axis=norm_axes)
        layer.kernel_scale = layer.add_weight(
            name="kernel_scale", shape=(layer.filters,),
            initializer=lambda shape, dtype=None: tf.cast(tf.reshape(norms, shape), dtype))


def _effective_kernel(layer, norm_axes, dtype):
    """The kernel the convolution applies: ``kernel``, or with weight normalisation
    (Salimans and Kingma, 2016) ``kernel_scale * kernel / ||kernel||`` per filter, the norm
    taken over ``norm_axes`` (taps and input channels)."""
    kernel = tf.convert_to_tensor(layer.kernel)
    if layer.weight_norm:
        filter_axis = ({0, 1, 2} - set(norm_axes)).pop()
        shape = [1, 1, 1]
        shape[filter_axis] = layer.filters
        kernel = tf.reshape(layer.kernel_scale, shape) * tf.math.l2_normalize(kernel,
                                                                              axis=norm_axes)
    return tf.cast(kernel, dtype)


def _strides_tuple(strides):
    if not isinstance(strides, (list, tuple)) or not strides:
        raise ValueError(f"strides must be a non-empty list of positive integers, "
                         f"got {strides!r}")
    for value in strides:
        check_positive_int("strides", value)
    return tuple(strides)


@keras.saving.register_keras_serializable(package="samplenet")
class StreamingConv1D(keras.layers.Layer):
    """Causal 1-D convolution, channels-last, with carried left context.

    Output frame ``i`` sees the inputs ``[(i + 1) * strides - receptive, (i + 1) * strides)``
    with ``receptive = dilation_rate * (kernel_size - 1) + 1``; the
    ``left_context = receptive - strides`` inputs before a chunk are its state.

    Args:
      filters: output channels.
      kernel_size: taps.
      strides: downsampling factor (input length must be a multiple of it); with
        ``strides > 1`` the kernel must span at least ``strides`` samples and
        ``dilation_rate`` must be 1.
      dilation_rate: spacing of the taps in samples.
      weight_norm: apply ``kernel_scale * kernel / ||kernel||`` (one norm per filter, over
        taps and input channels; the weight ``kernel_scale`` starts at the initial norm).
    Shapes: ``(batch, time, in_channels)`` -> ``(batch, time // strides, filters)``.
    """

    NORM_AXES = (0, 1)  # kernel (taps, in_channels, filters)

    def __init__(self, filters, kernel_size, strides=1, dilation_rate=1, weight_norm=False,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("kernel_size", kernel_size),
                            ("strides", strides), ("dilation_rate", dilation_rate)):
            check_positive_int(name, value)
        if strides > 1 and dilation_rate > 1:
            raise ValueError(f"dilation_rate must be 1 when strides > 1, got "
                             f"dilation_rate={dilation_rate}, strides={strides}")
        if kernel_size < strides:
            raise ValueError(f"kernel_size ({kernel_size}) must be >= strides ({strides})")
        check_bool("weight_norm", weight_norm)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.weight_norm = weight_norm

    @property
    def left_context(self):
        """Input samples before a chunk that its first output frame needs."""
        return self.dilation_rate * (self.kernel_size - 1) + 1 - self.strides

    def build(self, input_shape):
        self.in_channels = int(input_shape[-1])
        _add_kernel(self, (self.kernel_size, self.in_channels, self.filters), self.NORM_AXES)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def initial_state(self, batch_size):
        """Zeros ``(batch, left_context, in_channels)``: silence before the signal."""
        return tf.zeros([batch_size, self.left_context, self.in_channels], self.compute_dtype)

    def stream(self, inputs, state):
        """One chunk ``(batch, time, in_channels)`` (time a multiple of ``strides``) ->
        ``(outputs (batch, time // strides, filters), new_state)``."""
        padded = tf.concat([tf.cast(state, inputs.dtype), inputs], axis=1)
        kernel = _effective_kernel(self, self.NORM_AXES, inputs.dtype)
        outputs = tf.nn.convolution(padded, kernel, strides=self.strides,
                                    dilations=self.dilation_rate, padding="VALID")
        outputs = outputs + tf.cast(self.bias, inputs.dtype)
        new_state = padded[:, tf.shape(padded)[1] - self.left_context:]
        return outputs, new_state

    def call(self, inputs):
        return self.stream(inputs, self.initial_state(tf.shape(inputs)[0]))[0]

    def compute_output_shape(self, input_shape):
        time = input_shape[1]
        return (input_shape[0], None if time is None else time // self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "dilation_rate": self.dilation_rate, "weight_norm": self.weight_norm}


@keras.saving.register_keras_serializable(package="samplenet")
class StreamingConvTranspose1D(keras.layers.Layer):
    """Causal transposed 1-D convolution (upsampling by ``strides``), channels-last.

    Input frame ``i`` writes to outputs ``[i * strides, i * strides + kernel_size)``; the
    output is trimmed on the right to ``time * strides`` samples ("causal trimming"), so output
    ``j`` depends only on inputs ``<= j // strides``. The trimmed ``kernel_size - strides``
    partial sums overlap the next chunk: they are the state.

    Args:
      filters: output channels.
      kernel_size: taps (>= strides).
      strides: upsampling factor.
      weight_norm: as ``StreamingConv1D``'s (one norm per output filter).
    Shapes: ``(batch, time, in_channels)`` -> ``(batch, time * strides, filters)``.
    """

    NORM_AXES = (0, 2)  # kernel (taps, filters, in_channels)

    def __init__(self, filters, kernel_size, strides, weight_norm=False, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("kernel_size", kernel_size),
                            ("strides", strides)):
            check_positive_int(name, value)
        if kernel_size < strides:
            raise ValueError(f"kernel_size ({kernel_size}) must be >= strides ({strides})")
        check_bool("weight_norm", weight_norm)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.weight_norm = weight_norm

    @property
    def overlap(self):
        """Output samples past a chunk that its last frames already contribute to."""
        return self.kernel_size - self.strides

    def build(self, input_shape):
        self.in_channels = int(input_shape[-1])
        # tf.nn.conv1d_transpose takes kernels as (width, out_channels, in_channels).
        _add_kernel(self, (self.kernel_size, self.filters, self.in_channels), self.NORM_AXES)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def initial_state(self, batch_size):
        """Zeros ``(batch, kernel_size - strides, filters)``: no pending partial sums."""
        return tf.zeros([batch_size, self.overlap, self.filters], self.compute_dtype)

    def stream(self, inputs, state):
        """One chunk ``(batch, time, in_channels)`` -> ``(outputs (batch, time * strides,
        filters), new_state)``; the bias is added to emitted outputs only."""
        batch, time = tf.shape(inputs)[0], tf.shape(inputs)[1]
        full_length = (time - 1) * self.strides + self.kernel_size
        full = tf.nn.conv1d_transpose(inputs,
                                      _effective_kernel(self, self.NORM_AXES, inputs.dtype),
                                      output_shape=tf.stack([batch, full_length, self.filters]),
                                      strides=self.strides, padding="VALID")
        full = full + tf.pad(tf.cast(state, inputs.dtype),
                             [[0, 0], [0, full_length - self.overlap], [0, 0]])
        emitted = time * self.strides
        outputs = full[:, :emitted] + tf.cast(self.bias, inputs.dtype)
        return outputs, full[:, emitted:]

    def call(self, inputs):
        return self.stream(inputs, self.initial_state(tf.shape(inputs)[0]))[0]

    def compute_output_shape(self, input_shape):
        time = input_shape[1]
        return (input_shape[0], None if time is None else time * self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "weight_norm": self.weight_norm}


@keras.saving.register_keras_serializable(package="samplenet")
class ResidualUnit(keras.layers.Layer):
    """``x + conv_1(elu(conv_k,d(elu(x))))``: a dilated causal convolution of
    ``KERNEL_SIZE`` taps and a pointwise one, both ``channels`` wide.

    Args:
      channels: input and output channels.
      dilation_rate: dilation of the first convolution.
      weight_norm: weight-normalise both convolutions.
      zero_init_residual: start the pointwise convolution's kernel (with ``weight_norm``: its
        scale) at zero, so the unit starts as the identity.
    Shapes: ``(batch, time, channels)`` -> same. State: ``[dilated conv, pointwise conv]``.
    """

    def __init__(self, channels, dilation_rate, weight_norm=False, zero_init_residual=False,
                 **kwargs):
        super().__init__(**kwargs)
        check_positive_int("channels", channels)
        check_positive_int("dilation_rate", dilation_rate)
        check_bool("weight_norm", weight_norm)
        check_bool("zero_init_residual", zero_init_residual)
        self.channels = channels
        self.dilation_rate = dilation_rate
        self.weight_norm = weight_norm
        self.zero_init_residual = zero_init_residual
        self.dilated = StreamingConv1D(channels, KERNEL_SIZE, dilation_rate=dilation_rate,
                                       weight_norm=weight_norm, name="dilated")
        self.pointwise = StreamingConv1D(channels, 1, weight_norm=weight_norm,
                                         name="pointwise")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels != self.channels:
            raise ValueError(f"ResidualUnit of {self.channels} channels got inputs of "
                             f"{channels} channels")
        self.dilated.build((None, None, channels))
        self.pointwise.build((None, None, channels))
        if self.zero_init_residual:
            last = self.pointwise.kernel_scale if self.weight_norm else self.pointwise.kernel
            last.assign(tf.zeros_like(last))

    def initial_state(self, batch_size):
        return [self.dilated.initial_state(batch_size), self.pointwise.initial_state(batch_size)]

    def stream(self, inputs, state):
        hidden, dilated_state = self.dilated.stream(tf.nn.elu(inputs), state[0])
        hidden, pointwise_state = self.pointwise.stream(tf.nn.elu(hidden), state[1])
        return inputs + hidden, [dilated_state, pointwise_state]

    def call(self, inputs):
        return self.stream(inputs, self.initial_state(tf.shape(inputs)[0]))[0]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "dilation_rate": self.dilation_rate, "weight_norm": self.weight_norm,
                "zero_init_residual": self.zero_init_residual}


@keras.saving.register_keras_serializable(package="samplenet")
class SeanetEncoder(keras.layers.Layer):
    """Audio -> latent frames.

    A ``KERNEL_SIZE`` causal convolution to ``channels``; for each stride ``s`` (in order) a
    block of residual units (dilations 1, 3, 9) followed by ELU and a causal convolution of
    kernel ``2 s`` and stride ``s`` that doubles the channels; then ELU and a convolution of
    ``LATENT_KERNEL_SIZE`` taps to ``latent_dim``.

    Args:
      channels: channels of the first convolution (doubled by each block).
      strides: downsampling factor of each block; ``hop = prod(strides)`` samples per frame.
      latent_dim: size of a latent frame.
      weight_norm: weight-normalise every convolution.
      zero_init_residual: every residual unit starts as the identity (see ``ResidualUnit``).
    Shapes: ``(batch, time)`` audio, ``time`` a multiple of ``hop`` ->
    ``(batch, time // hop, latent_dim)``. Latent frame ``f`` depends only on samples
    ``< (f + 1) * hop``.
    """

    def __init__(self, channels=32, strides=(2, 4, 5, 8), latent_dim=128, weight_norm=False,
                 zero_init_residual=False, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("channels", channels)
        check_positive_int("latent_dim", latent_dim)
        check_bool("weight_norm", weight_norm)
        check_bool("zero_init_residual", zero_init_residual)
        self.channels = channels
        self.strides = _strides_tuple(strides)
        self.latent_dim = latent_dim
        self.weight_norm = weight_norm
        self.zero_init_residual = zero_init_residual
        self.input_conv = StreamingConv1D(channels, KERNEL_SIZE, weight_norm=weight_norm,
                                          name="input_conv")
        self.blocks = []
        for index, stride in enumerate(self.strides):
            width = channels * 2 ** index
            units = [ResidualUnit(width, d, weight_norm=weight_norm,
                                  zero_init_residual=zero_init_residual,
                                  name=f"block_{index}_unit_{k}")
                     for k, d in enumerate(DILATIONS)]
            down = StreamingConv1D(2 * width, 2 * stride, strides=stride,
                                   weight_norm=weight_norm, name=f"block_{index}_down")
            self.blocks.append(units + [down])
        self.output_conv = StreamingConv1D(latent_dim, LATENT_KERNEL_SIZE,
                                           weight_norm=weight_norm, name="output_conv")

    @property
    def hop(self):
        """Input samples per latent frame."""
        return math.prod(self.strides)

    def build(self, input_shape=None):
        self.input_conv.build((None, None, 1))
        for index, block in enumerate(self.blocks):
            for layer in block:
                layer.build((None, None, self.channels * 2 ** index))
        self.output_conv.build((None, None, self.channels * 2 ** len(self.strides)))

    def _pipeline(self):
        """``(layer, elu_first)`` in order: ELU precedes each downsampling convolution and the
        output convolution (residual units apply their own)."""
        return [(self.input_conv, False)] + \
            [(layer, layer is block[-1]) for block in self.blocks for layer in block] + \
            [(self.output_conv, True)]

    def initial_state(self, batch_size):
        """Zero left context of every convolution (nested list of tensors)."""
        return [layer.initial_state(batch_size) for layer, _ in self._pipeline()]

    def stream(self, audio, state):
        """One chunk of audio ``(batch, time)`` (time a multiple of ``hop``) ->
        ``(latent (batch, time // hop, latent_dim), new_state)``."""
        hidden = tf.cast(audio, self.compute_dtype)[..., None]
        new_state = []
        for (layer, elu_first), layer_state in zip(self._pipeline(), state):
            if elu_first:
                hidden = tf.nn.elu(hidden)
            hidden, layer_state = layer.stream(hidden, layer_state)
            new_state.append(layer_state)
        return hidden, new_state

    def convolutions(self):
        """The convolution layers in data-flow order, as ``(layer, transposed)`` pairs (all
        ``False`` here); a residual unit's two convolutions each, not its skip path."""
        layers = [self.input_conv]
        for block in self.blocks:
            for unit in block[:-1]:
                layers += [unit.dilated, unit.pointwise]
            layers.append(block[-1])
        layers.append(self.output_conv)
        return [(layer, False) for layer in layers]

    def call(self, audio):
        time = audio.shape[1]
        if time is not None and time % self.hop:
            raise ValueError(f"SeanetEncoder needs a length that is a multiple of its hop "
                             f"({self.hop}), got {time} samples")
        return self.stream(audio, self.initial_state(tf.shape(audio)[0]))[0]

    def compute_output_shape(self, input_shape):
        time = input_shape[1]
        return (input_shape[0], None if time is None else time // self.hop, self.latent_dim)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "strides": list(self.strides), "latent_dim": self.latent_dim,
                "weight_norm": self.weight_norm, "zero_init_residual": self.zero_init_residual}


@keras.saving.register_keras_serializable(package="samplenet")
class SeanetDecoder(keras.layers.Layer):
    """Latent frames -> audio: the mirror of ``SeanetEncoder``.

    A ``KERNEL_SIZE`` causal convolution to ``channels * 2 ** len(strides)``; for each stride
    ``s`` in reverse order, ELU, a causal transposed convolution of kernel ``2 s`` and stride
    ``s`` that halves the channels, and residual units (dilations 1, 3, 9); then ELU, a
    ``KERNEL_SIZE`` convolution to one channel and tanh.

    Args:
      channels: channels after the last upsampling block (as the encoder's ``channels``).
      strides: the encoder's strides (the decoder upsamples by them in reverse order).
      weight_norm: weight-normalise every convolution.
      zero_init_residual: every residual unit starts as the identity (see ``ResidualUnit``).
    Shapes: ``(batch, frames, latent_dim)`` -> ``(batch, frames * hop)`` in [-1, 1];
    output sample ``j`` depends only on frames ``<= j // hop``.

    ``call(latent, return_stages=True)`` also returns, for each upsampling block (coarsest
    first), the channel mean of its output, ``(batch, frames * hop // stage_factors[k])``:
    the stages the downsampled-waveform objective compares with the input audio.
    """

    def __init__(self, channels=32, strides=(2, 4, 5, 8), weight_norm=False,
                 zero_init_residual=False, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("channels", channels)
        check_bool("weight_norm", weight_norm)
        check_bool("zero_init_residual", zero_init_residual)
        self.channels = channels
        self.strides = _strides_tuple(strides)
        self.weight_norm = weight_norm
        self.zero_init_residual = zero_init_residual
        depth = len(self.strides)
        self.input_conv = StreamingConv1D(channels * 2 ** depth, KERNEL_SIZE,
                                          weight_norm=weight_norm, name="input_conv")
        self.blocks = []
        for index in reversed(range(depth)):
            stride, width = self.strides[index], channels * 2 ** index
            up = StreamingConvTranspose1D(width, 2 * stride, stride, weight_norm=weight_norm,
                                          name=f"block_{index}_up")
            units = [ResidualUnit(width, d, weight_norm=weight_norm,
                                  zero_init_residual=zero_init_residual,
                                  name=f"block_{index}_unit_{k}")
                     for k, d in enumerate(DILATIONS)]
            self.blocks.append([up] + units)
        self.output_conv = StreamingConv1D(1, KERNEL_SIZE, weight_norm=weight_norm,
                                           name="output_conv")

    @property
    def hop(self):
        """Output samples per latent frame."""
        return math.prod(self.strides)

    @property
    def stage_factors(self):
        """For each upsampling block (coarsest first), the upsampling still to come after it:
        its output has ``frames * hop // factor`` steps."""
        return [math.prod(self.strides[:index]) for index in reversed(range(len(self.strides)))]

    def build(self, input_shape):
        self.input_conv.build((None, None, int(input_shape[-1])))
        depth = len(self.strides)
        for block, index in zip(self.blocks, reversed(range(depth))):
            block[0].build((None, None, self.channels * 2 ** (index + 1)))
            for unit in block[1:]:
                unit.build((None, None, self.channels * 2 ** index))
        self.output_conv.build((None, None, self.channels))

    def initial_state(self, batch_size):
        """Zero left context / pending partial sums of every layer (nested list)."""
        return [self.input_conv.initial_state(batch_size),
                [[layer.initial_state(batch_size) for layer in block] for block in self.blocks],
                self.output_conv.initial_state(batch_size)]

    def _run(self, latent, state):
        hidden, input_state = self.input_conv.stream(tf.cast(latent, self.compute_dtype),
                                                     state[0])
        stages, block_states = [], []
        for block, states in zip(self.blocks, state[1]):
            hidden = tf.nn.elu(hidden)
            layer_states = []
            for layer, layer_state in zip(block, states):
                hidden, layer_state = layer.stream(hidden, layer_state)
                layer_states.append(layer_state)
            block_states.append(layer_states)
            stages.append(tf.reduce_mean(tf.cast(hidden, tf.float32), axis=-1))
        hidden, output_state = self.output_conv.stream(tf.nn.elu(hidden), state[2])
        audio = tf.tanh(tf.cast(hidden[..., 0], tf.float32))
        return audio, stages, [input_state, block_states, output_state]

    def stream(self, latent, state):
        """One chunk of latent frames ``(batch, frames, latent_dim)`` ->
        ``(audio (batch, frames * hop), new_state)``."""
        audio, _, new_state = self._run(latent, state)
        return audio, new_state

    def convolutions(self):
        """The convolution layers in data-flow order, as ``(layer, transposed)`` pairs: each
        block's upsampling transposed convolution, then its residual units' convolutions."""
        layers = [(self.input_conv, False)]
        for block in self.blocks:
            layers.append((block[0], True))
            for unit in block[1:]:
                layers += [(unit.dilated, False), (unit.pointwise, False)]
        layers.append((self.output_conv, False))
        return layers

    def call(self, latent, return_stages=False):
        audio, stages, _ = self._run(latent, self.initial_state(tf.shape(latent)[0]))
        return (audio, stages) if return_stages else audio

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        return (input_shape[0], None if frames is None else frames * self.hop)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "strides": list(self.strides), "weight_norm": self.weight_norm,
                "zero_init_residual": self.zero_init_residual}

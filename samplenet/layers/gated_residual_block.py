"""WaveNet's gated residual block: dilated causal conv -> tanh x sigmoid -> residual and skip."""
import keras
import tensorflow as tf

from samplenet.layers.causal_conv1d import CausalConv1D


def _check_count(name, value, allow_zero=False):
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")


@keras.saving.register_keras_serializable(package="samplenet")
class GatedResidualBlock(keras.layers.Layer):
    """One WaveNet layer.

    ``h = conv(x) [+ W_g g] [+ W_l c]`` (a dilated causal conv of ``filter_width`` taps giving
    filter and gate, ``dilation_channels`` each), ``z = tanh(filter) * sigmoid(gate)``,
    ``residual = x + W_r z`` (1x1), ``skip = W_s z`` (1x1). ``W_r`` and ``W_s`` are the two
    column blocks of one 1x1 projection (one matrix product per step).

    Args:
      residual_channels: channels of the block input and residual output.
      dilation_channels: channels of the filter and of the gate.
      skip_channels: channels of the skip output.
      filter_width: taps of the dilated convolution.
      dilation_rate: spacing of those taps in samples.
      global_condition_channels: size of the global conditioning vector ``g`` (0 = none).
      local_condition_channels: channels of the sample-rate conditioning ``c`` (0 = none).
      use_residual: False for the last block of a stack, whose residual output is unused
        (it then returns ``None`` as residual and has no residual weights).

    Call: ``x (batch, time, residual_channels)``, ``global_condition (batch, G)``,
    ``local_condition (batch, time, L)`` -> ``(residual (batch, time, residual_channels),
    skip (batch, time, skip_channels))``. ``step`` does the same for one time step with the
    convolution's ring-buffer cache (see ``CausalConv1D.step``).
    """

    def __init__(self, residual_channels, dilation_channels, skip_channels, filter_width=2,
                 dilation_rate=1, global_condition_channels=0, local_condition_channels=0,
                 use_residual=True, **kwargs):
        super().__init__(**kwargs)
        _check_count("residual_channels", residual_channels)
        _check_count("dilation_channels", dilation_channels)
        _check_count("skip_channels", skip_channels)
        _check_count("filter_width", filter_width)
        _check_count("dilation_rate", dilation_rate)
        _check_count("global_condition_channels", global_condition_channels, allow_zero=True)
        _check_count("local_condition_channels", local_condition_channels, allow_zero=True)
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.skip_channels = skip_channels
        self.filter_width = filter_width
        self.dilation_rate = dilation_rate
        self.global_condition_channels = global_condition_channels
        self.local_condition_channels = local_condition_channels
        self.use_residual = use_residual
        self.dilated = CausalConv1D(2 * dilation_channels, filter_width,
                                    dilation_rate=dilation_rate, name="dilated")
        self.global_projection = (keras.layers.Dense(2 * dilation_channels, use_bias=False,
                                                     name="global_projection")
                                  if global_condition_channels else None)
        self.local_projection = (keras.layers.Dense(2 * dilation_channels, use_bias=False,
                                                    name="local_projection")
                                 if local_condition_channels else None)
        self.output_projection = keras.layers.Dense(
            skip_channels + (residual_channels if use_residual else 0), name="output_projection")

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if in_channels != self.residual_channels:
            raise ValueError(f"input channels must equal residual_channels "
                             f"({self.residual_channels}), got {in_channels}")
        self.dilated.build((None, None, in_channels))
        if self.global_projection is not None:
            self.global_projection.build((None, self.global_condition_channels))
        if self.local_projection is not None:
            self.local_projection.build((None, None, self.local_condition_channels))
        self.output_projection.build((None, None, self.dilation_channels))

    def _condition(self, hidden, global_condition, local_condition, time_axis):
        """Add the conditioning projections to the filter/gate pre-activations ``hidden``."""
        for name, channels, value in (
                ("global_condition", self.global_condition_channels, global_condition),
                ("local_condition", self.local_condition_channels, local_condition)):
            if bool(channels) == (value is None):
                raise ValueError(f"{name} must be given exactly when {name}_channels > 0; "
                                 f"{name}_channels is {channels} and {name} is "
                                 f"{'missing' if value is None else 'given'}")
        if global_condition is not None:
            projected = self.global_projection(global_condition)
            hidden = hidden + (projected[:, None] if time_axis else projected)
        if local_condition is not None:
            hidden = hidden + self.local_projection(local_condition)
        return hidden

    def _gate(self, inputs, hidden):
        gated = tf.tanh(hidden[..., :self.dilation_channels]) * tf.sigmoid(
            hidden[..., self.dilation_channels:])
        projected = self.output_projection(gated)
        if not self.use_residual:
            return None, projected
        return (inputs + projected[..., :self.residual_channels],
                projected[..., self.residual_channels:])

    def call(self, inputs, global_condition=None, local_condition=None):
        hidden = self._condition(self.dilated(inputs), global_condition, local_condition,
                                 time_axis=True)
        return self._gate(inputs, hidden)

    def initial_cache(self, batch_size):
        """Zeros: the dilated convolution's past inputs before the start."""
        return self.dilated.initial_cache(batch_size, self.residual_channels)

    def cache_from_history(self, inputs, position):
        """The cache for stepping from ``position`` on, from the block inputs ``(batch, time,
        residual_channels)`` of the times just before it (see ``CausalConv1D``)."""
        return self.dilated.cache_from_history(inputs, position)

    def step(self, inputs, cache, position, global_condition=None, local_condition=None):
        """One time step: ``inputs (batch, residual_channels)`` at time ``position``,
        ``local_condition (batch, L)`` at that time -> ``(residual, skip, new cache)``."""
        hidden, cache = self.dilated.step(inputs, cache, position)
        hidden = self._condition(hidden, global_condition, local_condition, time_axis=False)
        residual, skip = self._gate(inputs, hidden)
        return residual, skip, cache

    def get_config(self):
        config = super().get_config()
        config.update(residual_channels=self.residual_channels,
                      dilation_channels=self.dilation_channels,
                      skip_channels=self.skip_channels, filter_width=self.filter_width,
                      dilation_rate=self.dilation_rate,
                      global_condition_channels=self.global_condition_channels,
                      local_condition_channels=self.local_condition_channels,
                      use_residual=self.use_residual)
        return config

import numpy as np
import pytest
import tensorflow as tf

from samplenet.ops.receptive_field import dependent_positions, measured_receptive_field


def _causal_conv(kernel_width, dilation=1):
    """A causal dilated convolution of (1, length) inputs (tf.nn.convolution: its dilated
    gradient runs on CPU, unlike tf.nn.conv1d's)."""
    kernel = tf.constant(np.random.default_rng(0).standard_normal((kernel_width, 1, 1)),
                         tf.float32)

    def fn(x):
        x = tf.pad(x[:, :, None], [[0, 0], [dilation * (kernel_width - 1), 0], [0, 0]])
        return tf.nn.convolution(x, kernel, padding="VALID", dilations=dilation)
    return fn


@pytest.mark.parametrize("kernel_width,dilation", [(1, 1), (2, 1), (3, 4), (2, 8)])
def test_measured_receptive_field_of_causal_conv_matches_formula(kernel_width, dilation):
    fn = _causal_conv(kernel_width, dilation)
    assert measured_receptive_field(fn, 64) == dilation * (kernel_width - 1) + 1
    positions = dependent_positions(fn, 64, position=40)
    assert positions.max() == 40


def test_measured_receptive_field_of_stack_adds_spans():
    first, second = _causal_conv(2, 1), _causal_conv(3, 2)
    assert measured_receptive_field(lambda x: second(first(x)[:, :, 0]), 32) == 1 + 1 + 4


def test_dependent_positions_detects_future_dependence():
    centred = lambda x: x + tf.roll(x, shift=-2, axis=1)  # output t reads input t + 2
    positions = dependent_positions(centred, 16, position=5)
    np.testing.assert_array_equal(positions, [5, 7])


def test_dependent_positions_near_start_clips_to_zero():
    positions = dependent_positions(_causal_conv(3, 2), 32, position=2)
    np.testing.assert_array_equal(positions, [0, 2])


def test_dependent_positions_accepts_channels():
    fn = lambda x: tf.reduce_sum(x, axis=-1, keepdims=True) + tf.roll(x, 1, axis=1)[..., :1]
    np.testing.assert_array_equal(dependent_positions(fn, 8, channels=3), [6, 7])


def test_measured_receptive_field_zero_without_dependence():
    assert measured_receptive_field(lambda x: tf.zeros_like(x) + 1.0, 8) == 0


def test_dependent_positions_rejects_bad_position():
    with pytest.raises(ValueError, match="position"):
        dependent_positions(lambda x: x, 8, position=8)

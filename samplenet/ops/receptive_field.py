"""Measure which input positions an output position depends on, by gradients.

Used by the tests of every autoregressive family: the measured span must equal the
``receptive_field`` formula, and no output may depend on a later input (causality).
"""
import numpy as np
import tensorflow as tf


def dependent_positions(fn, length, position=None, channels=None, num_trials=2, seed=0):
    """Input positions whose gradient on output ``position`` is nonzero.

    Args:
      fn: a differentiable function of a float32 tensor ``(1, length)`` (``channels`` None) or
        ``(1, length, channels)`` returning a tensor ``(1, length, ...)``.
      length: the input length in samples.
      position: the output position (default ``length - 1``).
      channels: the input's channel count, or None for a 2-D input.
      num_trials: random inputs and output projections tried; a position counts when any trial
        gives it a nonzero gradient (so an accidental zero, e.g. a ReLU off for one input,
        does not hide a dependency).
      seed: seed of the random inputs.
    Returns:
      sorted int64 NumPy array of input positions.
    """
    position = length - 1 if position is None else position
    if not 0 <= position < length:
        raise ValueError(f"position must be in [0, {length}), got {position}")
    shape = (1, length) if channels is None else (1, length, channels)
    rng = np.random.default_rng(seed)
    touched = np.zeros(length, dtype=bool)
    for _ in range(num_trials):
        inputs = tf.constant(rng.standard_normal(shape), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = tf.cast(fn(inputs), tf.float32)
            at_position = outputs[:, position]
            projection = tf.constant(rng.standard_normal(at_position.shape), tf.float32)
            objective = tf.reduce_sum(at_position * projection)
        gradient = tape.gradient(objective, inputs,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)
        gradient = np.abs(gradient.numpy()).reshape(length, -1)
        touched |= gradient.sum(axis=1) > 0
    return np.flatnonzero(touched)


def measured_receptive_field(fn, length, position=None, channels=None, num_trials=2, seed=0):
    """The span in samples, from the earliest to the latest input position that output
    ``position`` depends on (inclusive); 0 if it depends on none. Arguments as in
    ``dependent_positions``."""
    positions = dependent_positions(fn, length, position, channels, num_trials, seed)
    if positions.size == 0:
        return 0
    return int(positions[-1] - positions[0] + 1)

"""Losses and their units. Every autoregressive model optimises cross-entropy in nats and
reports bits per sample (nats / ln 2)."""
import math

import tensorflow as tf

NATS_PER_BIT = math.log(2.0)


def masked_cross_entropy(codes, logits, mask=None):
    """Mean cross-entropy in nats over the unmasked positions.

    Args:
      codes: int32 ``(batch, time)``, target levels in ``[0, q_levels)``.
      logits: float ``(batch, time, q_levels)``.
      mask: optional float ``(batch, time)``, 1 where the target counts, 0 for padding.
    Returns:
      ``(mean_nats, weight)``: a scalar float32 and the number of counted targets (float32),
      so that callers can average across batches exactly. With an all-zero mask the mean is 0.
    """
    per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=codes, logits=tf.cast(logits, tf.float32))
    if mask is None:
        mask = tf.ones_like(per_sample)
    mask = tf.cast(mask, tf.float32)
    weight = tf.reduce_sum(mask)
    mean = tf.math.divide_no_nan(tf.reduce_sum(per_sample * mask), weight)
    return mean, weight


def masked_accuracy(codes, logits, mask=None):
    """Fraction of unmasked positions whose arg-max level equals the target; ``(value, weight)``."""
    hits = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), codes), tf.float32)
    if mask is None:
        mask = tf.ones_like(hits)
    mask = tf.cast(mask, tf.float32)
    weight = tf.reduce_sum(mask)
    return tf.math.divide_no_nan(tf.reduce_sum(hits * mask), weight), weight


def nats_to_bits(nats):
    """Convert nats to bits (divide by ln 2)."""
    return nats / NATS_PER_BIT

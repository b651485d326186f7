"""Quantization of float audio in [-1, 1] into ``q_levels`` integer codes, and back.

Three schemes, each a companding curve ``compress: [-1, 1] -> [-1, 1]`` followed by
``q_levels`` equal bins of the companded value:

- ``"linear"``: no companding; bin ``c`` covers ``[-1 + 2c/q, -1 + 2(c+1)/q)``. The range is
  fixed (no per-file min-max normalisation, which would shift the DC level).
- ``"mu-law"``: ``sign(x) ln(1 + mu|x|) / ln(1 + mu)`` with ``mu = q_levels - 1``.
- ``"a-law"``: the standard A-law curve with ``A = 87.6``.

Decoding returns bin centres (the centre of the bin in the companded domain, expanded back),
so ``encode(decode(c)) == c`` for every code. Inputs outside [-1, 1] are clipped (they fall
into the first or last bin); NaN encodes to ``silence_code``. Codes outside ``[0, q_levels)``
are clipped when decoding.

NumPy and TensorFlow versions agree exactly: both are table look-ups in the same float32 tables
(bin boundaries for encoding, bin centres for decoding), computed once per
``(q_levels, quantization)`` in float64 with NumPy. Encoding is a binary search of the
boundaries (``np.searchsorted`` / ``tf.searchsorted``, which XLA compiles), decoding a gather,
so no transcendental function is evaluated twice in two libraries. The round trip is exact up
to ``q_levels = 2**24`` (the resolution of float32).
"""
import functools
import numbers

import numpy as np
import tensorflow as tf

QUANTIZATIONS = frozenset({"linear", "mu-law", "a-law"})
A_LAW_A = 87.6


def check_quantization(q_levels, quantization):
    """Raise ``ValueError`` unless ``q_levels`` is an int >= 2 and ``quantization`` is known."""
    if (not isinstance(q_levels, numbers.Integral) or isinstance(q_levels, bool)
            or q_levels < 2):
        raise ValueError(f"q_levels must be an int >= 2, got {q_levels!r}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {sorted(QUANTIZATIONS)}, "
                         f"got {quantization!r}")


def _expand(y, q_levels, quantization):
    """Inverse companding curve, float64 ``y`` in [-1, 1] -> ``x`` in [-1, 1]."""
    magnitude = np.abs(y)
    if quantization == "mu-law":
        mu = q_levels - 1.0
        magnitude = np.expm1(magnitude * np.log1p(mu)) / mu
    elif quantization == "a-law":
        scale = 1.0 + np.log(A_LAW_A)
        magnitude = np.where(magnitude < 1.0 / scale, magnitude * scale / A_LAW_A,
                             np.exp(magnitude * scale - 1.0) / A_LAW_A)
    return np.sign(y) * np.minimum(magnitude, 1.0)


@functools.lru_cache(maxsize=32)
def _tables(q_levels, quantization):
    """``(boundaries, centres)``: float32 arrays of shapes ``(q_levels - 1,)`` and ``(q_levels,)``.

    ``boundaries[k]`` is the lowest input of code ``k + 1``; ``centres[c]`` is the decoded value
    of code ``c``. Companded values are exact ratios ``(2k - q) / q``, so the tables are
    symmetric about 0.
    """
    check_quantization(q_levels, quantization)
    boundaries = _expand((2.0 * np.arange(1, q_levels) - q_levels) / q_levels,
                         q_levels, quantization).astype(np.float32)
    centres = _expand((2.0 * np.arange(q_levels) + 1.0 - q_levels) / q_levels,
                      q_levels, quantization).astype(np.float32)
    boundaries.flags.writeable = False
    centres.flags.writeable = False
    return boundaries, centres


def silence_code(q_levels, quantization):
    """The code of 0.0 (``q_levels // 2`` for every scheme: for even ``q_levels`` 0.0 is the
    lower edge of that bin, for odd ``q_levels`` its centre)."""
    check_quantization(q_levels, quantization)
    return int(q_levels) // 2


def encode(audio, q_levels, quantization):
    """Quantize audio with NumPy.

    Args:
      audio: float array of any shape, amplitude in [-1, 1] (outside: clipped; computed in
        float32).
      q_levels: number of codes, int >= 2.
      quantization: one of ``QUANTIZATIONS``.
    Returns:
      np.int32 array of the same shape, codes in ``[0, q_levels)``.
    """
    boundaries, _ = _tables(q_levels, quantization)
    audio = np.asarray(audio, dtype=np.float32)
    codes = np.searchsorted(boundaries, audio, side="right").astype(np.int32)
    return np.where(np.isnan(audio), np.int32(q_levels // 2), codes)


def decode(codes, q_levels, quantization):
    """Map codes to bin centres with NumPy.

    Args:
      codes: integer array of any shape, values in ``[0, q_levels)`` (outside: clipped).
      q_levels, quantization: as for ``encode``.
    Returns:
      np.float32 array of the same shape, amplitude in [-1, 1].
    """
    _, centres = _tables(q_levels, quantization)
    return centres.take(np.asarray(codes, dtype=np.int64), mode="clip")


def encode_tf(audio, q_levels, quantization):
    """TensorFlow version of ``encode``: float tensor of any shape -> tf.int32 codes of the
    same shape, bit-exact equal to ``encode``. Works in ``tf.function`` and under XLA."""
    boundaries, _ = _tables(q_levels, quantization)
    audio = tf.cast(audio, tf.float32)
    codes = tf.searchsorted(tf.constant(boundaries[None]), tf.reshape(audio, (1, -1)),
                            side="right", out_type=tf.int32)
    codes = tf.reshape(codes, tf.shape(audio))
    return tf.where(tf.math.is_nan(audio), tf.constant(q_levels // 2, tf.int32), codes)


def decode_tf(codes, q_levels, quantization):
    """TensorFlow version of ``decode``: integer tensor of any shape -> tf.float32 amplitudes of
    the same shape in [-1, 1], bit-exact equal to ``decode``."""
    _, centres = _tables(q_levels, quantization)
    codes = tf.clip_by_value(tf.cast(codes, tf.int32), 0, q_levels - 1)
    return tf.gather(tf.constant(centres), codes)

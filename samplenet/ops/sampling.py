"""In-graph sampling from categorical logits at a temperature, reproducible from a seed, and
the host-side checks of the generation arguments every autoregressive model shares.

The random numbers come from a counter-based integer hash computed with plain ``uint32`` tensor
ops, so a seed gives the same samples eagerly, inside ``tf.function``, under
``jit_compile=True`` (XLA) and on any device. (``tf.random.stateless_categorical`` draws
different numbers under XLA than without it, which would make a compiled generation loop
disagree with its uncompiled reference for the same seed.)

A seed is a shape ``(2,)`` int32 tensor, as for TensorFlow's stateless random ops. A generation
loop keeps one base seed and derives the seed of step ``t`` with ``step_seed(seed, t)``, so the
samples do not depend on how the loop is cut into chunks.
"""
import numpy as np
import tensorflow as tf

_MIX_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)  # "lowbias32" integer hash (C. Wellons)
_SALT_SEED = 0x9E3779B9
_SALT_STEP = 0x85EBCA6B
_SALT_ROW = 0xC2B2AE35


def _mix(x):
    """A bijective avalanche hash of uint32 tensors (elementwise)."""
    for multiplier, shift in zip(_MIX_MULTIPLIERS, (16, 15)):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(shift, tf.uint32)))
        x = x * tf.constant(multiplier, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def _as_uint32(seed):
    seed = tf.convert_to_tensor(seed)
    if seed.dtype != tf.int32:
        seed = tf.cast(seed, tf.int32)
    return tf.bitcast(seed, tf.uint32)


def make_seed(seed=None):
    """A shape ``(2,)`` int32 NumPy seed from a Python int (any size) or ``None`` (fresh entropy)."""
    if seed is None:
        words = np.random.SeedSequence().generate_state(2, dtype=np.uint32)
    else:
        value = int(seed) & 0xFFFFFFFFFFFFFFFF
        words = np.array([value & 0xFFFFFFFF, value >> 32], dtype=np.uint32)
    return words.view(np.int32)



def seed_from_int64(seed):
    """``make_seed`` in-graph: an int64 scalar tensor seed -> the int32 ``(2,)`` seed pair (low 32
    bits, high 32 bits), equal to ``make_seed`` of the same value (used by exported models)."""
    seed = tf.cast(seed, tf.int64)
    words = tf.stack([tf.bitwise.bitwise_and(seed, 0xFFFFFFFF),
                      tf.bitwise.bitwise_and(tf.bitwise.right_shift(seed, 32), 0xFFFFFFFF)])
    return tf.bitcast(tf.cast(words, tf.uint32), tf.int32)

def step_seed(seed, step):
    """The seed of step ``step`` (int scalar tensor) of a loop whose base seed is ``seed`` (2,).

    Returns an int32 ``(2,)`` tensor; distinct steps give unrelated seeds.
    """
    words = _as_uint32(seed)
    step = tf.bitcast(tf.cast(step, tf.int32), tf.uint32)
    first = _mix(tf.bitwise.bitwise_xor(words[0], _mix(step + tf.constant(_SALT_STEP, tf.uint32))))
    return tf.bitcast(tf.stack([first, words[1]]), tf.int32)


def uniform_from_seed(seed, batch_size):
    """``batch_size`` uniform float32 numbers in the open interval (0, 1), one per row, from a
    ``(2,)`` seed; a pure function of ``(seed, row index)``."""
    words = _as_uint32(seed)
    key = _mix(tf.bitwise.bitwise_xor(words[0],
                                      _mix(words[1] + tf.constant(_SALT_SEED, tf.uint32))))
    rows = tf.bitcast(tf.range(batch_size, dtype=tf.int32), tf.uint32)
    bits = _mix(tf.bitwise.bitwise_xor(key, _mix(rows + tf.constant(_SALT_ROW, tf.uint32))))
    top24 = tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32)
    return (top24 + 0.5) * (1.0 / (1 << 24))


def check_temperature(temperature, batch_size):
    """Validate a sampling temperature (scalar or one per sequence) on the host.

    Returns a float32 NumPy array ``(batch_size,)``; ``ValueError`` unless every value is finite
    and > 0 and the length is 1 or ``batch_size``.
    """
    values = np.asarray(temperature, dtype=np.float64).reshape(-1)
    if values.size not in (1, batch_size):
        raise ValueError(f"temperature must be a scalar or have one value per sequence "
                         f"({batch_size}), got {values.size} values")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
    return np.broadcast_to(values, (batch_size,)).astype(np.float32)


def check_prime(prime, batch_size):
    """Validate priming audio: ``None``, or float audio ``(prime_len,)``, ``(1, prime_len)`` or
    ``(batch_size, prime_len)`` in [-1, 1]. Returns ``None`` or float32 ``(batch_size,
    prime_len)``; ``ValueError`` for another shape, an empty prime or non-finite values."""
    if prime is None:
        return None
    audio = np.asarray(prime, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[0] not in (1, batch_size) or audio.shape[1] == 0:
        raise ValueError(f"prime must be audio of shape (prime_len,), (1, prime_len) or "
                         f"(batch_size={batch_size}, prime_len) with prime_len > 0, "
                         f"got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("prime contains NaN or infinite values")
    return np.ascontiguousarray(np.broadcast_to(audio, (batch_size, audio.shape[1])))


def check_condition(condition, batch_size, num_classes):
    """Validate global-conditioning class ids for a model with ``num_classes`` classes (0 =
    unconditioned, then ``condition`` must be None). Returns None or int32 ``(batch_size,)``."""
    if num_classes == 0:
        if condition is not None:
            raise ValueError(f"condition: this model is not class-conditioned "
                             f"(num_classes=0), got condition={condition!r}")
        return None
    if condition is None:
        raise ValueError(f"condition: this model is conditioned on num_classes={num_classes} "
                         f"classes; pass one class id per sequence (or one for all)")
    ids = np.asarray(condition).reshape(-1)
    if ids.size not in (1, batch_size) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"condition must be one integer class id or {batch_size} of them, "
                         f"got {condition!r}")
    if np.any(ids < 0) or np.any(ids >= num_classes):
        raise ValueError(f"condition ids must be in [0, {num_classes}), got {condition!r}")
    return np.broadcast_to(ids, (batch_size,)).astype(np.int32)


def sample_logits(logits, temperature, seed_pair):
    """Draw one level per row from ``softmax(logits / temperature)``.

    Args:
      logits: float ``(batch, q_levels)``.
      temperature: float ``(batch,)`` or a scalar, every value > 0 (checked here when the value
        is known at trace time; generation loops check it on the host with
        ``check_temperature``).
      seed_pair: int ``(2,)`` seed; the same seed and inputs give the same levels everywhere.
    Returns:
      int32 ``(batch,)`` levels in ``[0, q_levels)``.
    """
    logits = tf.cast(logits, tf.float32)
    batch_size, q_levels = tf.shape(logits)[0], tf.shape(logits)[1]
    temperature = tf.convert_to_tensor(temperature, tf.float32)
    known = tf.get_static_value(temperature)
    if known is not None and np.any(~(np.asarray(known) > 0)):
        raise ValueError(f"temperature must be > 0, got {known!r}")
    temperature = tf.broadcast_to(temperature, [batch_size])
    probabilities = tf.nn.softmax(logits / temperature[:, None], axis=-1)
    cumulative = tf.cumsum(probabilities, axis=-1)
    threshold = uniform_from_seed(seed_pair, batch_size) * cumulative[:, -1]
    below = tf.reduce_sum(tf.cast(cumulative < threshold[:, None], tf.int32), axis=-1)
    return tf.minimum(below, q_levels - 1)

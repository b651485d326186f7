"""Quality measures of a neural audio codec (its bitrate: ``SoundStream.bitrate_kbps``).

The distance functions take NumPy arrays or tensors of audio, ``(time,)`` or
``(batch, time)`` float in [-1, 1], reference first, and return float32 tensors with one value
per signal (shape ``()`` or ``(batch,)``); ``np.asarray`` or ``float`` turns them into NumPy.
"""
import math

import tensorflow as tf

from samplenet.ops import spectral


def _pair(reference, estimate):
    reference = tf.convert_to_tensor(reference, tf.float32)
    estimate = tf.convert_to_tensor(estimate, tf.float32)
    if reference.shape.rank not in (1, 2) or reference.shape != estimate.shape:
        raise ValueError(f"reference and estimate must have the same shape, (time,) or "
                         f"(batch, time); got {reference.shape} and {estimate.shape}")
    return reference, estimate


def _batched(reference, estimate):
    """Both as ``(batch, time)``, plus a function undoing the batching of a result."""
    if reference.shape.rank == 1:
        return reference[None], estimate[None], lambda value: value[0]
    return reference, estimate, lambda value: value


def si_sdr_db(reference, estimate, eps=1e-8):
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019).

    Both signals are made zero-mean; then ``target = a * reference`` with
    ``a = <estimate, reference> / ||reference||^2`` (the best scaling of the reference) and
    ``SI-SDR = 10 log10(||target||^2 / ||estimate - target||^2)``, with ``eps`` added to both
    energies. Invariant to the scale of ``estimate``; an estimate equal to the reference plus
    independent noise at SNR ``s`` dB scores about ``s`` dB.
    """
    reference, estimate = _pair(reference, estimate)
    reference = reference - tf.reduce_mean(reference, axis=-1, keepdims=True)
    estimate = estimate - tf.reduce_mean(estimate, axis=-1, keepdims=True)
    scale = tf.reduce_sum(estimate * reference, axis=-1, keepdims=True) / (
        tf.reduce_sum(tf.square(reference), axis=-1, keepdims=True) + eps)
    target = scale * reference
    ratio = (tf.reduce_sum(tf.square(target), axis=-1) + eps) / (
        tf.reduce_sum(tf.square(estimate - target), axis=-1) + eps)
    return 10.0 * tf.math.log(ratio) / math.log(10.0)


def stft_distance(reference, estimate, frame_length=1024, frame_step=256, eps=1e-5):
    """Log-spectral distance in dB.

    With ``X``, ``Y`` the STFT magnitudes of reference and estimate (periodic Hann window of
    ``frame_length`` samples, hop ``frame_step``, no padding; see ``samplenet.ops.spectral``):
    for each frame, the root mean square over frequency bins of
    ``20 log10((X + eps) / (Y + eps))``; then the mean over frames. 0 for identical signals.
    Signals must be at least ``frame_length`` samples long.
    """
    reference, estimate = _pair(reference, estimate)
    reference, estimate, unbatch = _batched(reference, estimate)
    x = spectral.stft_magnitude(reference, frame_length, frame_step)
    y = spectral.stft_magnitude(estimate, frame_length, frame_step)
    decibels = 20.0 * (tf.math.log(x + eps) - tf.math.log(y + eps)) / math.log(10.0)
    per_frame = tf.sqrt(tf.reduce_mean(tf.square(decibels), axis=-1))
    return unbatch(tf.reduce_mean(per_frame, axis=-1))


def mel_distance(reference, estimate, sample_rate, frame_length=1024, frame_step=256,
                 num_mels=80, eps=1e-5):
    """Mean absolute difference of natural-log mel magnitudes.

    ``mean |log(M_x + eps) - log(M_y + eps)|`` over frames and mel bands, with ``M`` the
    ``num_mels``-band mel magnitudes of ``samplenet.ops.spectral.mel_spectrogram`` (window
    ``frame_length``, hop ``frame_step``, 0 Hz to Nyquist). 0 for identical signals; a gain
    error of ``g`` on the estimate gives about ``|ln g|`` on loud bands.
    """
    reference, estimate = _pair(reference, estimate)
    reference, estimate, unbatch = _batched(reference, estimate)
    x = spectral.mel_spectrogram(reference, sample_rate, frame_length, frame_step, num_mels)
    y = spectral.mel_spectrogram(estimate, sample_rate, frame_length, frame_step, num_mels)
    difference = tf.abs(tf.math.log(x + eps) - tf.math.log(y + eps))
    return unbatch(tf.reduce_mean(difference, axis=[-2, -1]))

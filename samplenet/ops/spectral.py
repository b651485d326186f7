"""Spectral features of audio as pure, differentiable TensorFlow functions.

Every function takes audio ``(batch, time)`` float32 and frames it without padding: frame ``i``
covers samples ``[i * frame_step, i * frame_step + frame_length)``, so there are
``1 + (time - frame_length) // frame_step`` frames. Frames are weighted by a periodic Hann
window of ``frame_length`` samples. Gradients are finite everywhere, silence included.
"""
import tensorflow as tf
from samplenet.validation import check_positive_int



def _next_power_of_two(n):
    return 1 << (n - 1).bit_length()


def stft_magnitude(audio, frame_length, frame_step, fft_length=None):
    """Magnitude of the short-time Fourier transform.

    Args:
      audio: float32 ``(batch, time)``.
      frame_length: window length in samples.
      frame_step: hop between frames in samples.
      fft_length: FFT size in samples (``>= frame_length``, frames are zero-padded to it);
        default: the smallest power of 2 ``>= frame_length``.

    Returns:
      float32 ``(batch, frames, fft_length // 2 + 1)``; bin ``k`` is the frequency
      ``k * sample_rate / fft_length`` Hz.
    """
    check_positive_int("frame_length", frame_length)
    check_positive_int("frame_step", frame_step)
    if fft_length is None:
        fft_length = _next_power_of_two(frame_length)
    check_positive_int("fft_length", fft_length)
    if fft_length < frame_length:
        raise ValueError(f"fft_length must be >= frame_length ({frame_length}), "
                         f"got {fft_length}")
    audio = tf.convert_to_tensor(audio, tf.float32)
    spectrum = tf.signal.stft(audio, frame_length=frame_length, frame_step=frame_step,
                              fft_length=fft_length, window_fn=tf.signal.hann_window,
                              pad_end=False)
    return tf.abs(spectrum)


def mel_spectrogram(audio, sample_rate, frame_length, frame_step, num_mels, fmin=0.0,
                    fmax=None):
    """Mel-band magnitudes (linear amplitude, not power) of the STFT.

    Args:
      audio: float32 ``(batch, time)`` at ``sample_rate`` Hz.
      sample_rate: Hz.
      frame_length, frame_step: window and hop in samples (FFT size: next power of 2).
      num_mels: number of triangular mel bands (HTK mel scale, as
        ``tf.signal.linear_to_mel_weight_matrix``).
      fmin, fmax: band edges in Hz; ``fmax`` defaults to ``sample_rate / 2``.

    Returns:
      float32 ``(batch, frames, num_mels)``.
    """
    check_positive_int("sample_rate", sample_rate)
    check_positive_int("num_mels", num_mels)
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0.0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2 ({sample_rate / 2}), "
                         f"got fmin={fmin!r}, fmax={fmax!r}")
    magnitudes = stft_magnitude(audio, frame_length, frame_step)
    weights = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=num_mels, num_spectrogram_bins=magnitudes.shape[-1],
        sample_rate=sample_rate, lower_edge_hertz=float(fmin), upper_edge_hertz=float(fmax))
    return tf.tensordot(magnitudes, weights, axes=1)


def log_mel(audio, sample_rate, frame_length, frame_step, num_mels, fmin=0.0, fmax=None,
            eps=1e-5):
    """``log(mel_spectrogram(...) + eps)``: natural log of mel magnitudes, float32
    ``(batch, frames, num_mels)``; ``eps`` bounds it below by ``log(eps)`` on silence."""
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    mel = mel_spectrogram(audio, sample_rate, frame_length, frame_step, num_mels, fmin, fmax)
    return tf.math.log(mel + eps)

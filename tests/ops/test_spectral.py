"""Tests of samplenet.ops.spectral against NumPy references and pure tones."""
import numpy as np
import pytest
import tensorflow as tf

from samplenet.ops import spectral

SAMPLE_RATE = 16000


def _tone(frequency, num_samples, batch=1):
    t = np.arange(num_samples) / SAMPLE_RATE
    return np.tile(0.5 * np.sin(2 * np.pi * frequency * t), (batch, 1)).astype(np.float32)


def _numpy_stft_magnitude(audio, frame_length, frame_step, fft_length):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_length) / frame_length)
    num_frames = 1 + (audio.shape[-1] - frame_length) // frame_step
    frames = np.stack([audio[:, i * frame_step:i * frame_step + frame_length]
                       for i in range(num_frames)], axis=1)
    return np.abs(np.fft.rfft(frames.astype(np.float64) * window, n=fft_length, axis=-1))


def test_stft_magnitude_shape_counts_frames_without_padding():
    audio = np.zeros((3, 1000), np.float32)
    out = spectral.stft_magnitude(audio, frame_length=100, frame_step=30)
    assert out.shape == (3, 1 + (1000 - 100) // 30, 128 // 2 + 1)
    assert out.dtype == tf.float32


@pytest.mark.parametrize("frame_length,frame_step,fft_length", [(64, 16, None), (100, 25, 256)])
def test_stft_magnitude_matches_numpy_reference(frame_length, frame_step, fft_length):
    audio = np.random.default_rng(0).uniform(-1, 1, (2, 700)).astype(np.float32)
    expected = _numpy_stft_magnitude(audio, frame_length, frame_step,
                                     fft_length or 1 << (frame_length - 1).bit_length())
    got = spectral.stft_magnitude(audio, frame_length, frame_step, fft_length).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.max())


def test_stft_magnitude_tone_peaks_at_its_bin():
    fft_length = 256
    bin_index = 20
    audio = _tone(bin_index * SAMPLE_RATE / fft_length, 2048)
    out = spectral.stft_magnitude(audio, 256, 128).numpy()
    assert (out.argmax(axis=-1) == bin_index).all()


def test_stft_magnitude_gradient_is_finite_on_silence():
    audio = tf.zeros((1, 256))
    with tf.GradientTape() as tape:
        tape.watch(audio)
        loss = tf.reduce_sum(spectral.stft_magnitude(audio, 64, 32))
    assert np.isfinite(tape.gradient(loss, audio).numpy()).all()


def _mel_centres_hz(num_mels, fmin, fmax):
    def to_mel(hz):
        return 1127.0 * np.log1p(hz / 700.0)
    edges = np.linspace(to_mel(fmin), to_mel(fmax), num_mels + 2)
    return 700.0 * np.expm1(edges[1:-1] / 1127.0)


def test_mel_spectrogram_tone_peaks_in_its_band():
    num_mels = 40
    centres = _mel_centres_hz(num_mels, 0.0, SAMPLE_RATE / 2)
    for band in (10, 25):
        audio = _tone(centres[band], 4096)
        mel = spectral.mel_spectrogram(audio, SAMPLE_RATE, 512, 256, num_mels).numpy()
        assert mel.shape == (1, 1 + (4096 - 512) // 256, num_mels)
        assert (mel.argmax(axis=-1) == band).all()


def test_mel_spectrogram_respects_fmin_fmax():
    num_mels = 16
    centres = _mel_centres_hz(num_mels, 300.0, 4000.0)
    audio = _tone(centres[5], 2048)
    mel = spectral.mel_spectrogram(audio, SAMPLE_RATE, 512, 256, num_mels, fmin=300.0,
                                   fmax=4000.0).numpy()
    assert (mel.argmax(axis=-1) == 5).all()


def test_log_mel_is_log_of_mel_plus_eps():
    audio = np.random.default_rng(1).uniform(-1, 1, (2, 1024)).astype(np.float32)
    audio[1] = 0.0
    mel = spectral.mel_spectrogram(audio, SAMPLE_RATE, 256, 128, 20).numpy()
    out = spectral.log_mel(audio, SAMPLE_RATE, 256, 128, 20, eps=1e-3).numpy()
    np.testing.assert_allclose(out, np.log(mel + 1e-3), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[1], np.log(1e-3), rtol=1e-6)


@pytest.mark.parametrize("kwargs,name", [
    ({"frame_length": 0, "frame_step": 4}, "frame_length"),
    ({"frame_length": 64, "frame_step": -1}, "frame_step"),
    ({"frame_length": 64, "frame_step": 4, "fft_length": 32}, "fft_length"),
])
def test_stft_magnitude_invalid_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        spectral.stft_magnitude(np.zeros((1, 256), np.float32), **kwargs)


def test_mel_spectrogram_invalid_band_edges_raise():
    with pytest.raises(ValueError, match="fmax"):
        spectral.mel_spectrogram(np.zeros((1, 256), np.float32), SAMPLE_RATE, 64, 32, 8,
                                 fmax=9000.0)

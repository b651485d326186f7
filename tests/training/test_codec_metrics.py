"""Tests of the codec metrics on signals with known answers."""
import math

import numpy as np
import pytest

from samplenet.training import codec_metrics

SAMPLE_RATE = 16000


def _tone(num_samples=4096, frequency=440.0, amplitude=0.5):
    t = np.arange(num_samples) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _noise_at_snr(signal, snr_db, seed=0):
    noise = np.random.default_rng(seed).normal(size=signal.shape)
    noise -= noise.mean()
    # Remove the part of the noise along the signal, so the SNR is exact.
    noise -= (noise @ signal) / (signal @ signal) * signal
    noise *= np.sqrt((signal ** 2).sum() / (noise ** 2).sum() / 10 ** (snr_db / 10))
    return noise.astype(np.float32)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_si_sdr_equals_the_snr_of_added_orthogonal_noise(snr_db):
    signal = _tone()
    estimate = signal + _noise_at_snr(signal, snr_db)
    assert float(codec_metrics.si_sdr_db(signal, estimate)) == pytest.approx(snr_db, abs=0.01)


def test_si_sdr_is_scale_invariant_and_batched():
    signal = _tone()
    estimate = signal + _noise_at_snr(signal, 12.0)
    batch = codec_metrics.si_sdr_db(np.stack([signal, signal]),
                                    np.stack([estimate, 0.1 * estimate])).numpy()
    assert batch.shape == (2,)
    assert batch[0] == pytest.approx(batch[1], abs=1e-3)
    assert batch[0] == pytest.approx(12.0, abs=0.01)


def test_si_sdr_of_a_perfect_estimate_is_very_high_and_of_noise_very_low():
    signal = _tone()
    assert float(codec_metrics.si_sdr_db(signal, signal)) > 60
    noise = np.random.default_rng(1).normal(size=signal.shape).astype(np.float32)
    assert float(codec_metrics.si_sdr_db(signal, noise)) < -15


def test_si_sdr_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        codec_metrics.si_sdr_db(np.zeros(10), np.zeros(11))


def test_stft_distance_is_zero_for_identical_signals_and_20log_gain_for_scaled():
    signal = _tone()
    assert float(codec_metrics.stft_distance(signal, signal)) == pytest.approx(0.0, abs=1e-6)
    # With eps negligible against every bin, a gain g gives 20 log10(g) dB in every bin.
    loud = np.random.default_rng(2).normal(size=4096).astype(np.float32)
    distance = float(codec_metrics.stft_distance(loud, 2.0 * loud, eps=1e-9))
    assert distance == pytest.approx(20 * math.log10(2.0), rel=1e-3)


def test_mel_distance_is_zero_for_identical_signals_and_ln_gain_for_scaled():
    noise = np.random.default_rng(3).normal(size=(2, 4096)).astype(np.float32)
    same = codec_metrics.mel_distance(noise, noise, SAMPLE_RATE).numpy()
    np.testing.assert_allclose(same, 0.0, atol=1e-6)
    scaled = codec_metrics.mel_distance(noise, 0.5 * noise, SAMPLE_RATE, num_mels=40,
                                        eps=1e-9).numpy()
    np.testing.assert_allclose(scaled, math.log(2.0), rtol=1e-3)

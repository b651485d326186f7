"""Tests of samplenet.analysis.dataset: correlation length and predictable structure on sources
whose autocorrelation is known, level statistics of a constructed signal, folder headers."""
import json
import math

import numpy as np
import pytest
import soundfile

from samplenet.analysis import analyze_dataset
from samplenet.analysis.dataset import (correlation_length, envelope, predictable_lag,
                                        prediction_gains)
from samplenet.testing.sources import ArraySource


def _ar(a, b=0.0):
    return f"builtin:ar2?a={a}&b={b}&num_items=16&item_seconds=4"


@pytest.mark.parametrize("phi", [0.5, 0.9, 0.95])
def test_correlation_length_of_ar1_is_ceil_minus_one_over_log_phi(phi):
    report = analyze_dataset(_ar(phi), quiet=True)
    assert report.correlation_length_samples == math.ceil(-1.0 / math.log(phi))
    assert report.correlation_length_ms == pytest.approx(
        1000.0 * report.correlation_length_samples / 16000)
    assert report.predictable_lag_samples == 1  # AR(1): all structure at lag 1
    assert report.autocorrelation[1] == pytest.approx(phi, abs=0.01)


def test_predictable_lag_of_ar2_is_at_most_two():
    report = analyze_dataset(_ar(-0.4, 0.5), quiet=True)
    assert 1 <= report.predictable_lag_samples <= 2
    # True gain of the AR(2) predictor: variance / innovation variance.
    a, b = -0.4, 0.5
    rho1 = a / (1 - b)
    true_gain = -10 * math.log10((1 - rho1 ** 2) * (1 - b ** 2))
    assert report.prediction_gains_db[1] == pytest.approx(true_gain, abs=0.1)
    assert report.prediction_gains_db[-1] == pytest.approx(true_gain, abs=0.2)


def test_exact_ar1_autocorrelation_gives_exact_figures():
    phi = 0.8
    rho = phi ** np.arange(200)
    assert correlation_length(rho) == math.ceil(-1.0 / math.log(phi))
    gains = prediction_gains(rho, 50)
    np.testing.assert_allclose(gains, -10 * math.log10(1 - phi ** 2), rtol=1e-9)
    assert predictable_lag(gains) == 1


def test_envelope_is_the_smallest_non_increasing_bound():
    rho = np.cos(np.arange(100) * 0.3) * 0.97 ** np.arange(100)
    env = envelope(rho)
    assert np.all(env >= np.abs(rho)) and np.all(np.diff(env) <= 0)
    assert np.all(np.isin(env, np.abs(rho)))  # every value is attained: nothing looser


def test_white_noise_has_no_predictable_structure():
    rng = np.random.default_rng(0)
    source = ArraySource([0.3 * rng.standard_normal(20000) for _ in range(3)])
    report = analyze_dataset(source, quiet=True)
    assert report.correlation_length_samples == 1
    assert report.predictable_lag_samples == 0


def test_levels_of_a_constructed_signal():
    rate = 8000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)            # 1 s at -9 dBFS RMS
    silence = np.zeros(rate // 2)                          # 0.5 s: 25 frames of 20 ms
    clipped = np.ones(rate // 2)                           # 0.5 s at full scale
    source = ArraySource([np.concatenate([tone, silence]), clipped], sample_rate=rate)
    report = analyze_dataset(source, quiet=True)
    total = 2 * rate
    assert report.num_files == 2 and report.total_seconds == pytest.approx(2.0)
    assert report.peak_dbfs == pytest.approx(0.0)
    expected_rms = 10 * math.log10((0.125 * rate + 1.0 * rate / 2) / total)
    assert report.rms_dbfs == pytest.approx(expected_rms, abs=1e-3)
    assert report.clipping_fraction == pytest.approx(0.25)
    assert report.dc_offset == pytest.approx(0.25, abs=1e-3)
    assert report.silence_fraction == pytest.approx(25 / 100)
    # The constant file has no spectrum (mean removed): the centroid is the tone's.
    assert report.spectral_centroid_hz == pytest.approx(1000, abs=20)
    assert report.sample_rates == {rate: 2} and report.channels == {1: 2}


def _write(folder, name, rate, channels, seconds):
    rng = np.random.default_rng(len(name))
    audio = 0.1 * rng.standard_normal((int(rate * seconds), channels))
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, rate)


def test_folder_headers_give_rates_channels_and_durations(tmp_path):
    _write(tmp_path, "a.wav", 16000, 1, 0.5)
    _write(tmp_path, "sub/b.wav", 16000, 2, 1.0)
    _write(tmp_path, "c.flac", 8000, 1, 2.0)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    report = analyze_dataset(str(tmp_path), quiet=True)
    assert report.num_files == 3
    assert report.sample_rates == {16000: 2, 8000: 1}
    assert report.channels == {1: 2, 2: 1}
    assert sorted(report.durations.tolist()) == pytest.approx([0.5, 1.0, 2.0])
    assert report.total_seconds == pytest.approx(3.5)
    assert report.sample_rate == 16000 and report.most_common_sample_rate == 16000
    assert any("broken.wav" in path for path, _ in report.skipped)
    data = json.loads(report.to_json())
    for key in ("num_files", "total_seconds", "sample_rates", "channels", "peak_dbfs",
                "rms_dbfs", "crest_factor_db", "clipping_fraction", "dc_offset",
                "silence_fraction", "spectral_centroid_hz", "spectral_bandwidth_hz",
                "durations", "predictable_structure"):
        assert key in data
    assert data["sample_rates"] == {"16000": 2, "8000": 1}
    assert set(data["correlation_length"]) >= {"samples", "ms"}
    assert sum(data["durations"]["histogram"]["counts"]) == 3
    text = str(report)
    assert "correlation length" in text and "16000 Hz x2" in text


def test_max_files_and_split_limit_the_work():
    report = analyze_dataset("builtin:sines?num_items=10&item_seconds=0.5", max_files=3,
                             split="all", quiet=True)
    assert report.num_files == 3


@pytest.mark.parametrize("spec,words", [
    ("/no/such/folder", ["does not exist"]),
    ("builtin:nothing", ["unknown built-in source"]),
    ("builtin:ar2?a=2", ["not stationary"]),
])
def test_bad_sources_raise_a_clear_value_error(spec, words):
    with pytest.raises(ValueError) as error:
        analyze_dataset(spec, quiet=True)
    assert all(word in str(error.value) for word in words)


def test_empty_folder_raises_a_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match="no audio files"):
        analyze_dataset(str(tmp_path), quiet=True)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="correlation_seconds"):
        analyze_dataset("builtin:ar2?num_items=2", correlation_seconds=0, quiet=True)
    with pytest.raises(ValueError, match="max_files"):
        analyze_dataset("builtin:ar2?num_items=2", max_files=0, quiet=True)

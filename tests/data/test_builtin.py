"""Tests of the built-in signal generators (samplenet.data.builtin) and their sources."""
import numpy as np
import pytest
from scipy import signal

from samplenet.data import builtin, from_spec

SAMPLE_RATE = 16000


def _spectrum(audio, sample_rate=SAMPLE_RATE):
    """(frequencies Hz, magnitudes) of a Hann-windowed real FFT."""
    magnitudes = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.fft.rfftfreq(len(audio), 1.0 / sample_rate), magnitudes


def _load_all(source):
    return [source.load(example) for example in source.examples("all")]


@pytest.mark.parametrize("name", sorted(builtin.GENERATORS))
def test_builtin_source_same_seed_gives_same_items(name):
    spec = f"builtin:{name}?num_items=3&item_seconds=0.25"
    first, second = _load_all(from_spec(spec)), _load_all(from_spec(spec))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize("name", sorted(builtin.GENERATORS))
def test_builtin_source_other_seed_gives_other_items(name):
    spec = f"builtin:{name}?num_items=2&item_seconds=0.25"
    base = _load_all(from_spec(spec))
    for other in (_load_all(from_spec(spec, seed=1)), _load_all(from_spec(spec + "&seed=1"))):
        for a, b in zip(base, other):
            assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(builtin.GENERATORS))
def test_builtin_items_are_float32_audio_in_range(name):
    source = from_spec(f"builtin:{name}?num_items=2&item_seconds=0.5&sample_rate=8000")
    assert source.sample_rate == 8000 and source.num_classes == 0 and source.skipped == []
    for audio in _load_all(source):
        assert audio.dtype == np.float32 and audio.shape == (4000,)
        assert np.all(np.isfinite(audio))
        assert np.max(np.abs(audio)) <= 1.0
        assert np.std(audio) > 0.01


def test_builtin_item_is_generated_from_seed_and_index():
    source = from_spec("builtin:sines?num_items=3&item_seconds=0.1&seed=5")
    example = source.examples("all")[2]
    assert example.key == "sines/0002"
    expected = builtin.Sines(SAMPLE_RATE).generate(np.random.default_rng([5, 2]), 1600)
    np.testing.assert_array_equal(source.load(example), expected)


@pytest.mark.parametrize("frequency", [220.0, 349.2, 587.3, 880.0])
def test_pluck_fundamental_is_tuned_to_the_frequency(frequency):
    note = builtin.Plucked(SAMPLE_RATE).pluck(np.random.default_rng(0), frequency, 0.998,
                                              SAMPLE_RATE)
    frequencies, magnitudes = _spectrum(note)
    below_second_harmonic = frequencies < 1.5 * frequency
    peak = frequencies[below_second_harmonic][np.argmax(magnitudes[below_second_harmonic])]
    assert abs(peak - frequency) < 0.002 * frequency


def test_plucked_spectrum_peaks_are_scale_frequencies():
    source = from_spec("builtin:plucked?num_items=4")
    scale = np.array(builtin.Plucked.SCALE_HZ)
    for audio in _load_all(source):
        assert np.max(np.abs(audio)) == pytest.approx(builtin.PEAK_LEVEL, rel=1e-6)
        frequencies, magnitudes = _spectrum(audio)
        magnitudes[frequencies > 1.05 * scale.max()] = 0.0  # only the range of fundamentals
        peaks, _ = signal.find_peaks(magnitudes, distance=int(20 * len(audio) / SAMPLE_RATE))
        strongest = frequencies[peaks[np.argsort(magnitudes[peaks])[-5:]]]
        distance = np.min(np.abs(strongest[:, None] / scale[None, :] - 1.0), axis=1)
        assert np.all(distance < 0.005), (strongest, distance)


def test_plucked_melody_uses_several_notes():
    source = from_spec("builtin:plucked?num_items=1")
    audio = source.load(source.examples("all")[0])
    frequencies, magnitudes = _spectrum(audio)
    level = [np.max(magnitudes[np.abs(frequencies - f) < 2.0]) for f in builtin.Plucked.SCALE_HZ]
    assert np.sum(np.array(level) > 0.1 * np.max(magnitudes)) >= 3


@pytest.mark.parametrize("index", range(6))
def test_sines_spectrum_peaks_at_drawn_frequencies(index):
    source = from_spec("builtin:sines?num_items=6&seed=3")
    audio = source.load(source.examples("all")[index])
    tones = builtin.Sines(SAMPLE_RATE).draw_tones(np.random.default_rng([3, index]))
    frequencies, magnitudes = _spectrum(audio)
    near = np.abs(frequencies[:, None] - tones.frequency[None, :]) < 2.0
    assert np.any(near[np.argmax(magnitudes)])
    for tone in range(len(tones.frequency)):
        assert np.max(magnitudes[near[:, tone]]) > 0.05 * np.max(magnitudes)
    assert np.all((tones.frequency >= 80.0) & (tones.frequency <= 2000.0))


def _autocorrelation(series, lag):
    centred = series - series.mean()
    return np.dot(centred[:-lag], centred[lag:]) / np.dot(centred, centred)


@pytest.mark.parametrize("a, b, c, noise", [(-0.4, 0.5, 0.0, 1.0), (0.6, -0.3, 0.5, 0.2)])
def test_ar2_yule_walker_recovers_coefficients(a, b, c, noise):
    source = from_spec(f"builtin:ar2?a={a}&b={b}&c={c}&noise={noise}&num_items=1"
                       "&item_seconds=20")
    series = source.load(source.examples("all")[0]).astype(np.float64)
    rho1, rho2 = _autocorrelation(series, 1), _autocorrelation(series, 2)
    a_hat, b_hat = np.linalg.solve([[1.0, rho1], [rho1, 1.0]], [rho1, rho2])
    assert abs(a_hat - a) < 0.02 and abs(b_hat - b) < 0.02
    assert abs(rho1 - a / (1.0 - b)) < 0.02
    coefficients = source.coefficients
    assert set(coefficients) == {"a", "b", "c_scaled", "scale"}
    assert coefficients["a"] == a and coefficients["b"] == b
    assert coefficients["c_scaled"] == pytest.approx(c * coefficients["scale"])
    assert series.mean() == pytest.approx(coefficients["c_scaled"] / (1.0 - a - b), abs=0.01)


def test_ar2_scale_puts_five_standard_deviations_at_full_scale():
    source = from_spec("builtin:ar2?num_items=1&item_seconds=20&noise=3.0")
    series = source.load(source.examples("all")[0])
    assert np.std(series) == pytest.approx(0.2, rel=0.05)
    # one global factor: every item of the source shares it, whatever its own range
    other = from_spec("builtin:ar2?num_items=1&item_seconds=20&noise=3.0&seed=9")
    assert other.coefficients["scale"] == source.coefficients["scale"]


@pytest.mark.parametrize("a, b", [(0.6, 0.5), (0.0, 1.0), (-1.5, 0.6), (0.0, -1.2)])
def test_ar2_non_stationary_coefficients_raise(a, b):
    with pytest.raises(ValueError, match="not stationary"):
        builtin.Ar2(SAMPLE_RATE, a=a, b=b)
    with pytest.raises(ValueError, match="not stationary"):
        from_spec(f"builtin:ar2?a={a}&b={b}")


def test_ar2_zero_noise_raises():
    with pytest.raises(ValueError, match="noise"):
        builtin.Ar2(SAMPLE_RATE, noise=0.0)


def test_coefficients_of_other_builtins_raise_attribute_error():
    assert not hasattr(from_spec("builtin:plucked?num_items=1"), "coefficients")


@pytest.mark.parametrize("name, sample_rate", [("plucked", 2000), ("sines", 200)])
def test_musical_generators_reject_too_low_sample_rate(name, sample_rate):
    with pytest.raises(ValueError, match="sample_rate"):
        builtin.GENERATORS[name](sample_rate)

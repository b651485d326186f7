import numpy as np
import pytest
import tensorflow as tf

from samplenet import quantization as qz

SCHEMES = sorted(qz.QUANTIZATIONS)
LEVELS = [2, 3, 7, 256, 257, 65536]


def _compress(x, q_levels, quantization):
    """Float64 reference companding curve, written independently of the module."""
    x = np.clip(np.asarray(x, np.float64), -1.0, 1.0)
    a = np.abs(x)
    if quantization == "mu-law":
        mu = q_levels - 1.0
        a = np.log1p(mu * a) / np.log1p(mu)
    elif quantization == "a-law":
        big_a = 87.6
        with np.errstate(divide="ignore"):
            a = np.where(a < 1 / big_a, big_a * a, 1 + np.log(big_a * a)) / (1 + np.log(big_a))
    return np.sign(x) * a


def _reference_codes(x, q_levels, quantization):
    y = _compress(x, q_levels, quantization)
    return np.clip(np.floor((y + 1.0) / 2.0 * q_levels), 0, q_levels - 1).astype(np.int32)


def _invert(y, q_levels, quantization):
    """Invert the reference curve by bisection (float64), independent of the module's formula."""
    lo, hi = np.full_like(y, -1.0), np.full_like(y, 1.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = _compress(mid, q_levels, quantization) < y
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _probe_values(q_levels, quantization, rng, count=100_000):
    """Random values plus every kind of edge: bin edges and their float32 neighbours, centres,
    tiny values, +-0, +-1, out of range, infinities."""
    edges = _invert((2.0 * np.arange(q_levels + 1) - q_levels) / q_levels, q_levels,
                    quantization).astype(np.float32)
    if edges.size > 20_000:
        edges = rng.choice(edges, 20_000, replace=False)
    parts = [
        rng.uniform(-1.2, 1.2, count).astype(np.float32),
        (rng.choice([-1, 1], 1000) * 10.0 ** rng.uniform(-12, 0, 1000)).astype(np.float32),
        edges, np.nextafter(edges, np.float32(-np.inf)), np.nextafter(edges, np.float32(np.inf)),
        qz.decode(np.arange(q_levels), q_levels, quantization),
        np.array([0.0, -0.0, 1.0, -1.0, 1.5, -1.5, np.inf, -np.inf], np.float32),
    ]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("quantization", SCHEMES)
@pytest.mark.parametrize("q_levels", LEVELS)
def test_encode_of_decode_returns_every_code(q_levels, quantization):
    codes = np.arange(q_levels, dtype=np.int32)
    np.testing.assert_array_equal(
        qz.encode(qz.decode(codes, q_levels, quantization), q_levels, quantization), codes)


@pytest.mark.parametrize("quantization", SCHEMES)
@pytest.mark.parametrize("q_levels", [2, 3, 256, 65536])
def test_numpy_and_tf_agree_bit_exactly(q_levels, quantization):
    values = _probe_values(q_levels, quantization, np.random.default_rng(q_levels))
    codes = qz.encode(values, q_levels, quantization)
    np.testing.assert_array_equal(qz.encode_tf(values, q_levels, quantization).numpy(), codes)
    all_codes = np.arange(q_levels, dtype=np.int32)
    decoded = qz.decode(all_codes, q_levels, quantization)
    decoded_tf = qz.decode_tf(all_codes, q_levels, quantization).numpy()
    assert decoded_tf.dtype == np.float32
    np.testing.assert_array_equal(decoded_tf.view(np.uint32), decoded.view(np.uint32))


def test_tf_versions_agree_under_xla_with_numpy():
    values = _probe_values(256, "mu-law", np.random.default_rng(0), count=10_000)

    @tf.function(jit_compile=True)
    def round_trip(x):
        codes = qz.encode_tf(x, 256, "mu-law")
        return codes, qz.decode_tf(codes, 256, "mu-law")

    codes, decoded = round_trip(tf.constant(values))
    np.testing.assert_array_equal(codes.numpy(), qz.encode(values, 256, "mu-law"))
    np.testing.assert_array_equal(decoded.numpy(), qz.decode(codes.numpy(), 256, "mu-law"))


@pytest.mark.parametrize("quantization", SCHEMES)
@pytest.mark.parametrize("q_levels", [2, 3, 256, 257, 65536])
def test_codes_match_float64_reference_away_from_edges(q_levels, quantization):
    values = _probe_values(q_levels, quantization, np.random.default_rng(1))
    values = values[np.isfinite(values)]
    edges = _invert((2.0 * np.arange(1, q_levels) - q_levels) / q_levels, q_levels, quantization)
    index = np.searchsorted(edges, values)
    nearest = np.minimum(np.abs(values - edges[np.maximum(index - 1, 0)]),
                         np.abs(values - edges[np.minimum(index, q_levels - 2)]))
    far = nearest > 1e-6 * np.maximum(np.abs(values), 1e-30) + 1e-30
    assert far.mean() > 0.5
    np.testing.assert_array_equal(qz.encode(values[far], q_levels, quantization),
                                  _reference_codes(values[far], q_levels, quantization))


@pytest.mark.parametrize("quantization", SCHEMES)
@pytest.mark.parametrize("q_levels", [2, 3, 256, 65536])
def test_round_trip_error_is_at_most_half_a_bin_when_companded(q_levels, quantization):
    x = np.random.default_rng(2).uniform(-1, 1, 50_000).astype(np.float32)
    decoded = qz.decode(qz.encode(x, q_levels, quantization), q_levels, quantization)
    half_bin = 1.0 / q_levels
    error = np.abs(_compress(decoded, q_levels, quantization) - _compress(x, q_levels,
                                                                         quantization))
    assert error.max() <= half_bin * (1 + 1e-4) + 1e-6


@pytest.mark.parametrize("quantization", SCHEMES)
def test_round_trip_error_is_bounded_by_local_bin_width(quantization):
    q_levels = 256
    edges = _invert((2.0 * np.arange(q_levels + 1) - q_levels) / q_levels, q_levels,
                    quantization)
    x = np.random.default_rng(3).uniform(-1, 1, 50_000).astype(np.float32)
    codes = qz.encode(x, q_levels, quantization)
    width = edges[codes + 1] - edges[codes]
    error = np.abs(qz.decode(codes, q_levels, quantization) - x)
    # Half a bin, plus the ~2% skew of the companding curve inside one bin of 256.
    assert np.all(error <= 0.5 * width * 1.05 + 1e-7)


def test_linear_error_is_uniform_over_the_range():
    q_levels = 256
    x = np.random.default_rng(4).uniform(-1, 1, 200_000).astype(np.float32)
    error = np.abs(qz.decode(qz.encode(x, q_levels, "linear"), q_levels, "linear") - x)
    regions = np.digitize(np.abs(x), [0.01, 0.1, 0.5, 0.9])
    worst = np.array([error[regions == r].max() for r in range(5)])
    mean = np.array([error[regions == r].mean() for r in range(5)])
    np.testing.assert_allclose(worst, 1.0 / q_levels, rtol=0.02)
    np.testing.assert_allclose(mean, 0.5 / q_levels, rtol=0.1)


@pytest.mark.parametrize("quantization", ["mu-law", "a-law"])
def test_companded_error_is_smallest_near_zero_and_largest_near_full_scale(quantization):
    q_levels = 256
    rng = np.random.default_rng(5)
    near_zero = rng.uniform(-0.005, 0.005, 10_000).astype(np.float32)
    middle = rng.uniform(0.2, 0.3, 10_000).astype(np.float32)
    full_scale = rng.uniform(0.9, 1.0, 10_000).astype(np.float32)
    errors = [np.abs(qz.decode(qz.encode(x, q_levels, quantization), q_levels, quantization)
                     - x).max() for x in (near_zero, middle, full_scale)]
    assert errors[0] < errors[1] < errors[2]
    assert errors[2] > 1.0 / q_levels > errors[0]


@pytest.mark.parametrize("quantization", SCHEMES)
@pytest.mark.parametrize("q_levels", [2, 3, 256])
def test_codes_and_amplitudes_stay_in_range(q_levels, quantization):
    values = np.array([-np.inf, -7.0, -1.0, -0.999, 0.0, 0.999, 1.0, 7.0, np.inf], np.float32)
    codes = qz.encode(values, q_levels, quantization)
    assert codes.dtype == np.int32
    assert codes.min() == 0 and codes.max() == q_levels - 1
    assert codes[0] == codes[1] == codes[2] == 0
    assert codes[-1] == codes[-2] == codes[-3] == q_levels - 1
    decoded = qz.decode(np.arange(q_levels), q_levels, quantization)
    assert decoded.dtype == np.float32
    assert np.all(np.abs(decoded) <= 1.0)


@pytest.mark.parametrize("quantization", SCHEMES)
@pytest.mark.parametrize("q_levels", [2, 3, 256])
def test_encode_and_decode_are_monotonic_and_symmetric(q_levels, quantization):
    x = np.linspace(-1.1, 1.1, 20_001, dtype=np.float32)
    assert np.all(np.diff(qz.encode(x, q_levels, quantization)) >= 0)
    decoded = qz.decode(np.arange(q_levels), q_levels, quantization)
    assert np.all(np.diff(decoded) > 0)
    np.testing.assert_array_equal(decoded, -decoded[::-1])


@pytest.mark.parametrize("quantization", SCHEMES)
@pytest.mark.parametrize("q_levels", [2, 3, 255, 256])
def test_silence_code_is_the_code_of_zero(q_levels, quantization):
    code = qz.silence_code(q_levels, quantization)
    assert isinstance(code, int)
    assert code == qz.encode(np.float32(0.0), q_levels, quantization)
    assert code == int(qz.encode_tf(0.0, q_levels, quantization))
    if q_levels % 2:
        assert qz.decode(code, q_levels, quantization) == 0.0


def test_q_levels_two_gives_sign_bit():
    codes = qz.encode(np.array([-0.5, -1e-9, 0.0, 1e-9, 0.5], np.float32), 2, "linear")
    np.testing.assert_array_equal(codes, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(qz.decode([0, 1], 2, "linear"), [-0.5, 0.5])


def test_shapes_are_preserved_and_out_of_range_codes_clipped():
    audio = np.random.default_rng(6).uniform(-1, 1, (3, 5, 7)).astype(np.float32)
    assert qz.encode(audio, 256, "mu-law").shape == (3, 5, 7)
    assert qz.encode_tf(audio, 256, "mu-law").shape == (3, 5, 7)
    assert qz.decode_tf(np.zeros((2, 4), np.int64), 256, "mu-law").shape == (2, 4)
    signature = tf.TensorSpec((None, 64), tf.float32)
    graph = tf.function(lambda x: qz.decode_tf(qz.encode_tf(x, 256, "mu-law"), 256, "mu-law"),
                        input_signature=[signature], autograph=False)
    assert graph.get_concrete_function().structured_outputs.shape.as_list() == [None, 64]
    ends = qz.decode([0, 255], 256, "a-law")
    np.testing.assert_array_equal(qz.decode([-5, 300], 256, "a-law"), ends)
    np.testing.assert_array_equal(qz.decode_tf([-5, 300], 256, "a-law").numpy(), ends)


def test_nan_encodes_to_silence_in_both_versions():
    values = np.array([np.nan, 0.5], np.float32)
    expected = [qz.silence_code(256, "linear"), qz.encode(np.float32(0.5), 256, "linear")]
    np.testing.assert_array_equal(qz.encode(values, 256, "linear"), expected)
    np.testing.assert_array_equal(qz.encode_tf(values, 256, "linear").numpy(), expected)


@pytest.mark.parametrize("q_levels", [1, 0, -3, 2.5, "256", True, None])
def test_invalid_q_levels_raise_naming_the_argument(q_levels):
    for call in (lambda: qz.encode([0.0], q_levels, "linear"),
                 lambda: qz.decode_tf([0], q_levels, "linear"),
                 lambda: qz.silence_code(q_levels, "linear")):
        with pytest.raises(ValueError, match="q_levels") as error:
            call()
        assert repr(q_levels) in str(error.value)


def test_unknown_quantization_raises_naming_value_and_choices():
    with pytest.raises(ValueError) as error:
        qz.encode_tf([0.0], 256, "mulaw")
    message = str(error.value)
    assert "quantization" in message and "'mulaw'" in message
    assert all(name in message for name in qz.QUANTIZATIONS)
    with pytest.raises(ValueError, match="quantization"):
        qz.check_quantization(256, None)

import numpy as np
import pytest
import tensorflow as tf

from samplenet.ops.sampling import (check_temperature, make_seed, sample_logits, seed_from_int64,
                                    step_seed, uniform_from_seed)

LOGITS = np.log(np.array([0.5, 0.3, 0.15, 0.05, 0.0], dtype=np.float64) + 1e-30).astype(np.float32)


def _draw(temperature, rows=8000, seed=7):
    logits = np.tile(LOGITS, (rows, 1))
    return sample_logits(logits, np.full(rows, temperature, np.float32), make_seed(seed)).numpy()


def test_sample_logits_frequencies_match_softmax():
    codes = _draw(1.0)
    counts = np.bincount(codes, minlength=5) / codes.size
    np.testing.assert_allclose(counts, [0.5, 0.3, 0.15, 0.05, 0.0], atol=0.02)


def test_sample_logits_temperature_sharpens_and_flattens():
    cold = np.bincount(_draw(0.05), minlength=5) / 8000
    hot = np.bincount(_draw(2.0), minlength=5) / 8000
    expected_hot = np.array([0.5, 0.3, 0.15, 0.05]) ** 0.5
    expected_hot /= expected_hot.sum()
    assert cold[0] > 0.99
    np.testing.assert_allclose(hot[:4], expected_hot, atol=0.02)
    assert hot[4] == 0.0


def test_sample_logits_per_sequence_temperature():
    rows = 4000
    logits = np.tile(LOGITS, (2 * rows, 1))
    temperature = np.repeat(np.array([0.05, 1.0], np.float32), rows)
    codes = sample_logits(logits, temperature, make_seed(3)).numpy()
    assert np.mean(codes[:rows] == 0) > 0.99
    assert abs(np.mean(codes[rows:] == 0) - 0.5) < 0.03


def test_sample_logits_same_everywhere_for_same_seed():
    logits = tf.random.stateless_normal([64, 16], seed=[1, 2]) * 3.0
    temperature = tf.fill([64], 0.9)
    seed = tf.constant(make_seed(11))
    eager = sample_logits(logits, temperature, seed).numpy()
    graph = tf.function(sample_logits)(logits, temperature, seed).numpy()
    xla = tf.function(sample_logits, jit_compile=True)(logits, temperature, seed).numpy()
    np.testing.assert_array_equal(eager, graph)
    np.testing.assert_array_equal(eager, xla)
    other = sample_logits(logits, temperature, make_seed(12)).numpy()
    assert np.mean(eager != other) > 0.3


def test_step_seed_gives_distinct_reproducible_seeds():
    seed = make_seed(5)
    seeds = np.stack([step_seed(seed, t).numpy() for t in range(200)])
    assert len({tuple(s) for s in seeds}) == 200
    compiled = tf.function(step_seed, jit_compile=True)
    np.testing.assert_array_equal(compiled(seed, tf.constant(17)).numpy(), seeds[17])
    # Neighbouring user seeds do not give shifted copies of one stream.
    stream_a = [uniform_from_seed(step_seed(make_seed(0), t), 1).numpy()[0] for t in range(50)]
    stream_b = [uniform_from_seed(step_seed(make_seed(1), t), 1).numpy()[0] for t in range(50)]
    assert not set(np.round(stream_a, 6)) & set(np.round(stream_b, 6))


def test_uniform_from_seed_is_uniform_in_open_interval():
    values = uniform_from_seed(make_seed(9), 20000).numpy()
    assert values.min() > 0.0 and values.max() < 1.0
    histogram = np.histogram(values, bins=10, range=(0, 1))[0] / values.size
    np.testing.assert_allclose(histogram, 0.1, atol=0.01)


def test_make_seed_is_deterministic_for_ints_and_handles_large_values():
    np.testing.assert_array_equal(make_seed(123), make_seed(123))
    assert make_seed(123).dtype == np.int32 and make_seed(123).shape == (2,)
    assert not np.array_equal(make_seed(2**40), make_seed(0))


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), [1.0, 0.0]])
def test_check_temperature_rejects_non_positive(temperature):
    with pytest.raises(ValueError, match="temperature"):
        check_temperature(temperature, 2)


def test_check_temperature_broadcasts_and_checks_length():
    np.testing.assert_array_equal(check_temperature(0.5, 3), [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="temperature"):
        check_temperature([1.0, 1.0], 3)


def test_sample_logits_rejects_known_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        sample_logits(np.zeros((2, 3), np.float32), np.array([1.0, 0.0], np.float32),
                      make_seed(0))


@pytest.mark.parametrize("seed", [0, 7, -3, 2 ** 40 + 5, 2 ** 63 - 1, -(2 ** 63)])
def test_seed_from_int64_equals_make_seed(seed):
    np.testing.assert_array_equal(
        seed_from_int64(tf.constant(seed, tf.int64)).numpy(), make_seed(seed))

"""Tests of ResidualVectorQuantizer: nearest-neighbour reference, residual refinement, EMA rule,
dead codes, k-means initialisation, code round trip, quantizer dropout, commitment gradients."""
import numpy as np
import pytest
import tensorflow as tf

from samplenet.layers.residual_vector_quantizer import ResidualVectorQuantizer
from samplenet.testing import assert_layer_contract


def _latent(shape=(3, 20, 4), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _set_state(layer, codebooks, counts, sums):
    layer.codebooks.assign(codebooks)
    layer.ema_counts.assign(counts)
    layer.ema_sums.assign(sums)
    layer.initialized.assign(1.0)


def _blobs(num_blobs=4, per_blob=50, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=10.0, size=(num_blobs, dim)).astype(np.float32)
    points = np.concatenate([m + 0.1 * rng.normal(size=(per_blob, dim)) for m in means])
    return means, rng.permutation(points).astype(np.float32).reshape(num_blobs, per_blob, dim)


def test_rvq_keeps_the_layer_contract():
    assert_layer_contract(ResidualVectorQuantizer(2, 8), _latent())


@pytest.mark.parametrize("kwargs", [
    {"num_quantizers": 0}, {"codebook_size": 2.0}, {"ema_decay": 1.0},
    {"dead_code_threshold": -1}, {"quantizer_dropout": 1.5}, {"kmeans_iterations": 0},
    {"laplace_epsilon": 0}, {"ema_decay": "0.9"}])
def test_rvq_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ResidualVectorQuantizer(**kwargs)


def test_rvq_rejects_bad_num_quantizers():
    layer = ResidualVectorQuantizer(2, 8)
    layer(_latent())
    with pytest.raises(ValueError, match="num_quantizers"):
        layer.encode(_latent(), num_quantizers=3)


def test_one_quantizer_is_nearest_neighbour_search():
    layer = ResidualVectorQuantizer(1, 16)
    x = _latent()
    out = layer(x, return_details=True)
    codebook = layer.codebooks.numpy()[0]
    distances = ((x[:, :, None, :].astype(np.float64) - codebook) ** 2).sum(-1)
    expected = distances.argmin(-1)
    np.testing.assert_array_equal(out["codes"].numpy()[:, 0], expected)
    np.testing.assert_allclose(out["quantized"].numpy(), codebook[expected], atol=1e-6)


def test_more_quantizers_never_raise_the_latent_error():
    layer = ResidualVectorQuantizer(4, 8, dead_code_threshold=0.0)
    x = _latent((4, 32, 4))
    layer(x, training=True)  # k-means initialisation on this batch
    errors = [np.mean((layer.decode(layer.encode(x, n)).numpy() - x) ** 2) for n in (1, 2, 3, 4)]
    assert errors[0] < np.mean(x ** 2)
    assert all(b <= a + 1e-6 for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0]


def test_codes_round_trip_through_decode():
    layer = ResidualVectorQuantizer(3, 8)
    x = _latent()
    layer(x, training=True)
    for n in (1, 3):
        codes = layer.encode(x, num_quantizers=n)
        assert codes.shape == (3, n, 20) and codes.dtype == tf.int32
        quantized = layer(x, num_quantizers=n)
        np.testing.assert_allclose(layer.decode(codes).numpy(), quantized.numpy(), atol=1e-6)


def test_ema_update_follows_the_decay_rule():
    decay, epsilon = 0.9, 1e-5
    layer = ResidualVectorQuantizer(1, 4, ema_decay=decay, dead_code_threshold=0.0,
                                    quantizer_dropout=0.0, laplace_epsilon=epsilon)
    x = _latent((2, 10, 3))
    layer(x)
    codebook = _latent((1, 4, 3), seed=1)
    counts = np.array([[3.0, 1.0, 2.0, 4.0]], np.float32)
    sums = codebook * counts[..., None]
    _set_state(layer, codebook, counts, sums)

    codes = layer.encode(x).numpy()[:, 0].reshape(-1)
    flat = x.reshape(-1, 3)
    batch_counts = np.bincount(codes, minlength=4)
    batch_sums = np.stack([flat[codes == k].sum(0) for k in range(4)])
    new_counts = decay * counts[0] + (1 - decay) * batch_counts
    new_sums = decay * sums[0] + (1 - decay) * batch_sums
    total = new_counts.sum()
    smoothed = (new_counts + epsilon) / (total + 4 * epsilon) * total
    expected = new_sums / smoothed[:, None]

    layer(x, training=True)
    np.testing.assert_allclose(layer.ema_counts.numpy()[0], new_counts, rtol=1e-5)
    np.testing.assert_allclose(layer.ema_sums.numpy()[0], new_sums, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.codebooks.numpy()[0], expected, rtol=1e-4, atol=1e-5)
    # Each used code moved toward the mean of its vectors.
    for k in np.unique(codes):
        mean = flat[codes == k].mean(0)
        assert np.linalg.norm(expected[k] - mean) < np.linalg.norm(codebook[0, k] - mean)


def test_dead_code_is_replaced_by_an_input_and_live_codes_are_not():
    layer = ResidualVectorQuantizer(1, 4, dead_code_threshold=0.5, quantizer_dropout=0.0)
    x = _latent((2, 10, 3))
    layer(x)
    codebook = np.array([[[0.5, 0, 0], [-0.5, 0, 0], [0, 0.5, 0], [100.0, 100.0, 100.0]]],
                        np.float32)
    counts = np.array([[5.0, 5.0, 5.0, 0.0]], np.float32)
    _set_state(layer, codebook, counts, codebook * counts[..., None])
    assert 3 not in layer.encode(x).numpy()

    layer(x, training=True)
    new = layer.codebooks.numpy()[0]
    flat = x.reshape(-1, 3)
    assert np.min(np.abs(flat - new[3]).sum(-1)) < 1e-6  # code 3 is now one of the inputs
    np.testing.assert_allclose(layer.ema_counts.numpy()[0, 3], 20 / 4)  # uniform share
    assert np.all(np.abs(new[:3]) < 5.0)  # live codes moved by the EMA rule only


def test_kmeans_initialisation_puts_a_code_on_each_blob_with_matching_ema_state():
    means, points = _blobs()
    layer = ResidualVectorQuantizer(1, 4, kmeans_iterations=5)
    layer(points)
    assert layer.initialized.numpy() == 0.0
    layer(points, training=True)
    assert layer.initialized.numpy() == 1.0
    codebook = layer.codebooks.numpy()[0]
    for mean in means:
        assert np.min(np.linalg.norm(codebook - mean, axis=1)) < 0.1
    np.testing.assert_allclose(np.sort(layer.ema_counts.numpy()[0]), [50.0] * 4, rtol=1e-5)
    np.testing.assert_allclose(layer.ema_sums.numpy()[0],
                               codebook * layer.ema_counts.numpy()[0][:, None], rtol=1e-3,
                               atol=1e-3)


def test_kmeans_initialisation_runs_only_once():
    means, points = _blobs()
    layer = ResidualVectorQuantizer(1, 4)
    layer(points, training=True)
    layer(np.zeros_like(points), training=True)
    codebook = layer.codebooks.numpy()[0]
    assert sum(np.min(np.linalg.norm(codebook - m, axis=1)) < 1.0 for m in means) >= 3


def test_quantizer_dropout_draws_every_count_from_one_to_n():
    layer = ResidualVectorQuantizer(5, 4)
    counts = layer.sample_num_quantizers(2000).numpy()
    assert set(counts.tolist()) == {1, 2, 3, 4, 5}
    no_dropout = ResidualVectorQuantizer(5, 4, quantizer_dropout=0.0)
    assert set(no_dropout.sample_num_quantizers(100).numpy().tolist()) == {5}


def test_quantizer_dropout_uses_and_trains_only_the_first_n_q_quantizers():
    layer = ResidualVectorQuantizer(3, 4, ema_decay=0.5, dead_code_threshold=0.0)
    x = _latent((64, 4, 2))
    layer(x)
    codebooks = _latent((3, 4, 2), seed=1)
    _set_state(layer, codebooks, np.zeros((3, 4)), np.zeros((3, 4, 2)))
    out = layer(x, training=True, return_details=True)
    used = out["num_quantizers_used"].numpy()
    assert set(used.tolist()) == {1, 2, 3}
    codes = out["codes"].numpy()
    expected = np.stack([sum(codebooks[i][codes[b, i]] for i in range(used[b]))
                         for b in range(64)])
    np.testing.assert_allclose(out["quantized"].numpy(), expected, atol=1e-5)
    # EMA counts: each quantizer counted the frames of the examples that used it.
    frames_used = np.array([4 * (used > i).sum() for i in range(3)])
    np.testing.assert_allclose(layer.ema_counts.numpy().sum(axis=1), 0.5 * frames_used,
                               rtol=1e-5)


def test_commitment_gradient_reaches_every_quantizer_input():
    layer = ResidualVectorQuantizer(3, 4)
    x = tf.constant(_latent())
    layer(x, training=True)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        losses = layer(x, return_details=True)["commitment_losses"]
        terms = [losses[i] for i in range(3)]
    for i, term in enumerate(terms):
        gradient = tape.gradient(term, x)
        assert gradient is not None and np.abs(gradient.numpy()).max() > 0, f"quantizer {i}"


def test_straight_through_gradient_is_identity():
    layer = ResidualVectorQuantizer(2, 4)
    x = tf.constant(_latent())
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        total = tf.reduce_sum(y * tf.range(4, dtype=tf.float32))
    gradient = tape.gradient(total, x).numpy()
    np.testing.assert_allclose(gradient, np.broadcast_to(np.arange(4.0), x.shape))


def test_perplexity_counts_the_codes_in_use():
    means, points = _blobs()
    layer = ResidualVectorQuantizer(1, 8)
    layer(points, training=True)
    perplexity = layer(points, return_details=True)["perplexities"].numpy()[0]
    assert 3.5 <= perplexity <= 8.0

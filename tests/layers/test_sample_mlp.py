"""SampleMLP: contract, NumPy reference of the window projection, lookup-table step."""
import numpy as np
import pytest
import tensorflow as tf

from samplenet.layers.sample_mlp import SampleMLP
from samplenet.testing import assert_layer_contract

FRAME, Q, EMB, DIM = 4, 16, 3, 8


def _codes(batch, length, seed=0):
    return np.random.default_rng(seed).integers(0, Q, size=(batch, length)).astype(np.int32)


def test_sample_mlp_contract():
    layer = SampleMLP(FRAME, Q, EMB, DIM, mlp_layers=2, weight_norm=True)
    logits = assert_layer_contract(layer, _codes(2, 10), call_kwargs={"conditioning": None})
    assert logits.shape == (2, 10 - FRAME + 1, Q)


def test_sample_mlp_matches_numpy_reference():
    layer = SampleMLP(FRAME, Q, EMB, DIM, mlp_layers=2)
    codes = _codes(2, 9)
    conditioning = np.random.default_rng(1).normal(size=(2, 6, DIM)).astype(np.float32)
    logits = np.asarray(layer(codes, conditioning))
    embedding = np.asarray(layer.embedding)
    kernel = np.asarray(layer.window_projection.kernel())
    for t in range(6):
        window = embedding[codes[:, t:t + FRAME]].reshape(2, FRAME * EMB)
        h = np.maximum(window @ kernel + np.asarray(layer.window_projection.b)
                       + conditioning[:, t], 0)
        h = np.maximum(np.asarray(layer.hidden[0](h)), 0)
        np.testing.assert_allclose(logits[:, t], np.asarray(layer.output_projection(h)),
                                   atol=1e-4)


def test_sample_mlp_step_with_lookup_table_equals_call():
    layer = SampleMLP(FRAME, Q, EMB, DIM, mlp_layers=3, weight_norm=True)
    codes = _codes(3, FRAME + 4)
    conditioning = np.random.default_rng(2).normal(size=(3, 5, DIM)).astype(np.float32)
    logits = layer(codes, conditioning)
    table = layer.lookup_table()
    for t in range(5):
        step = layer.step(tf.constant(codes[:, t:t + FRAME]), conditioning[:, t], table)
        np.testing.assert_allclose(step, logits[:, t], atol=1e-4)


def test_sample_mlp_embedding_size_is_used():
    layer = SampleMLP(FRAME, Q, emb_size=7, dim=DIM)
    layer(_codes(1, FRAME))
    assert tuple(layer.embedding.shape) == (Q, 7)
    assert tuple(layer.window_projection.v.shape) == (FRAME * 7, DIM)


@pytest.mark.parametrize("argument", ["frame_size", "q_levels", "emb_size", "dim", "mlp_layers"])
def test_sample_mlp_rejects_non_positive(argument):
    kwargs = dict(frame_size=FRAME, q_levels=Q, emb_size=EMB, dim=DIM, mlp_layers=2)
    kwargs[argument] = 0
    with pytest.raises(ValueError, match=argument):
        SampleMLP(**kwargs)

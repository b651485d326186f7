"""SampleRNN: causality, training/generation consistency, truncated-BPTT state, priming,
round trips, learning, and impossible configurations."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from samplenet import quantization
from samplenet.data import pipelines
from samplenet.models.samplernn import SampleRNN
from samplenet.testing import assert_model_round_trip
from samplenet.testing.sources import ArraySource

Q = 16


def _model(frame_sizes=(4, 8), rnn_type="gru", **kwargs):
    options = dict(dim=16, num_rnn_layers=2, emb_size=8, q_levels=Q, seq_len=32,
                   weight_norm=True)
    options.update(kwargs)
    model = SampleRNN(frame_sizes=list(frame_sizes), rnn_type=rnn_type, **options)
    for tier in model.tiers:  # a non-trivial learned initial state
        tier.h0.assign(np.random.default_rng(3).normal(size=tier.h0.shape).astype(np.float32))
    return model


def _batch(model, batch=2, seed=0, reset=True):
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, model.q_levels, (batch, model.overlap + model.seq_len))
    data = {"samples": samples.astype(np.int32),
            "mask": np.ones((batch, model.seq_len), np.float32),
            "reset": np.full((batch,), reset)}
    if model.num_classes:
        data["label"] = rng.integers(0, model.num_classes, batch).astype(np.int32)
    return data


@pytest.mark.parametrize("frame_sizes", [(4,), (4, 8), (2, 4, 8)])
def test_samplernn_is_causal(frame_sizes):
    model = _model(frame_sizes)
    data = _batch(model, batch=1)
    logits = np.asarray(model(data))
    for target in (0, 5, 17, model.seq_len - 1):
        changed = {**data, "samples": data["samples"].copy()}
        position = model.overlap + target
        changed["samples"][0, position] = (changed["samples"][0, position] + 7) % Q
        other = np.asarray(model(changed))
        np.testing.assert_array_equal(other[:, :target + 1], logits[:, :target + 1])
        if target + 1 < model.seq_len:  # and the change is seen afterwards
            assert np.abs(other[:, target + 1:] - logits[:, target + 1:]).max() > 0


@pytest.mark.parametrize("frame_sizes", [(4,), (4, 8), (2, 4, 8)])
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_samplernn_teacher_forced_logits_equal_generation_logits(frame_sizes, rnn_type):
    model = _model(frame_sizes, rnn_type, skip_connections=rnn_type == "lstm")
    data = _batch(model, batch=2)
    training = np.asarray(model(data))
    generation = np.asarray(model.generation_logits(data["samples"]))
    np.testing.assert_allclose(generation, training, atol=2e-4)


def test_samplernn_consistency_with_global_conditioning():
    model = _model(num_classes=3)
    data = _batch(model, batch=3)
    training = np.asarray(model(data))
    generation = np.asarray(model.generation_logits(data["samples"], data["label"]))
    np.testing.assert_allclose(generation, training, atol=2e-4)
    other_class = np.asarray(model({**data, "label": (data["label"] + 1) % 3}))
    assert np.abs(other_class - training).max() > 1e-3


def _loss(model, data):
    model.reset_metrics()
    return float(model.test_step(data)["loss"])


def test_samplernn_carried_state_changes_second_subsequence_and_reset_restores_it():
    model = _model()
    first, second = _batch(model, seed=1), _batch(model, seed=2, reset=False)
    fresh = _loss(model, {**second, "reset": np.ones(2, bool)})
    _loss(model, first)
    carried = _loss(model, second)
    assert abs(carried - fresh) > 1e-4
    _loss(model, first)
    assert _loss(model, {**second, "reset": np.ones(2, bool)}) == pytest.approx(fresh, abs=1e-6)


def test_samplernn_reset_is_per_row():
    model = _model()
    first, second = _batch(model, seed=1), _batch(model, seed=2, reset=False)
    for batch in (first, second):  # both rows hold the same audio, so carry the same state
        batch["samples"][1] = batch["samples"][0]
    fresh = _loss(model, {**second, "reset": np.ones(2, bool)})
    _loss(model, first)
    carried = _loss(model, second)
    assert abs(carried - fresh) > 1e-4
    for row, expected in ((0, fresh), (1, carried)):  # row 0 resets, row 1 carries on
        mask = np.zeros_like(second["mask"])
        mask[row] = 1.0
        _loss(model, first)
        mixed = {**second, "reset": np.array([True, False]), "mask": mask}
        assert _loss(model, mixed) == pytest.approx(expected, abs=1e-5)


def test_samplernn_mask_excludes_padding_from_the_loss():
    model = _model()
    data = _batch(model, batch=1)
    half = {**data, "mask": np.concatenate([np.ones((1, 16)), np.zeros((1, 16))], 1)
            .astype(np.float32)}
    scrambled = {**half, "samples": half["samples"].copy()}
    scrambled["samples"][0, model.overlap + 16:] = 0  # change only masked targets
    assert _loss(model, half) == pytest.approx(_loss(model, scrambled), abs=1e-6)


def test_samplernn_generation_is_seeded_and_chunk_invariant():
    model = _model()
    codes, audio = model.generate(70, batch_size=2, seed=7, chunk_samples=8)
    again, _ = model.generate(70, batch_size=2, seed=7, chunk_samples=64)
    other, _ = model.generate(70, batch_size=2, seed=8, chunk_samples=64)
    np.testing.assert_array_equal(codes, again)
    assert (codes != other).any()
    assert codes.shape == (2, 70) and codes.min() >= 0 and codes.max() < Q
    np.testing.assert_array_equal(audio, quantization.decode(codes, Q, "mu-law"))


def test_samplernn_generation_with_prime_continues_the_parallel_pass():
    model = _model(num_classes=2)
    prime = np.sin(np.arange(21) / 3.0).astype(np.float32) * 0.5  # not a whole top frame
    codes, _ = model.generate(16, batch_size=2, temperature=1e-4, seed=0, prime=prime,
                              condition=[0, 1])
    prime_codes = quantization.encode(prime, Q, "mu-law")
    silence = quantization.silence_code(Q, "mu-law")
    pad = model.overlap + (-len(prime) % model.overlap)
    for row in range(2):
        samples = np.concatenate([np.full(pad, silence), prime_codes, codes[row]])[None]
        logits, _ = model.forward(samples.astype(np.int32), np.array([row], np.int32))
        greedy = np.argmax(np.asarray(logits)[0, -16:], axis=-1)  # predictions of codes[row]
        np.testing.assert_array_equal(greedy, codes[row])


def test_samplernn_temperature_per_sequence():
    model = _model()
    codes, _ = model.generate(200, batch_size=2, temperature=[1e-3, 5.0], seed=1)
    # Near-zero temperature is greedy: few distinct levels; a hot row spreads over many.
    assert len(np.unique(codes[0])) < len(np.unique(codes[1]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0.0), "temperature"), (dict(temperature=[1.0, 2.0, 3.0]), "temperature"),
    (dict(condition=[1]), "num_classes"), (dict(prime=np.zeros((3, 5))), "prime")])
def test_samplernn_generate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        next(_model().generate_chunks(10, batch_size=2, **kwargs))


def test_samplernn_generate_rejects_non_positive_length():
    with pytest.raises(ValueError, match="num_samples"):
        next(_model().generate_chunks(0))


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_samplernn_config_and_keras_round_trip(rnn_type):
    model = _model(rnn_type=rnn_type, skip_connections=True, num_classes=2)
    assert_model_round_trip(model, _batch(model))
    assert SampleRNN(**model.get_config()).get_config() == model.get_config()


@pytest.mark.parametrize("kwargs, match", [
    (dict(frame_sizes=[4, 6]), "multiple"), (dict(frame_sizes=[8, 4]), "multiple"),
    (dict(frame_sizes=[]), "frame_sizes"), (dict(q_levels=1), "q_levels"),
    (dict(quantization="ulaw"), "quantization"), (dict(rnn_type="rnn"), "rnn_type"),
    (dict(seq_len=30), "seq_len"), (dict(dim=0), "dim"), (dict(num_classes=-1), "num_classes"),
    (dict(emb_size=0), "emb_size")])
def test_samplernn_rejects_impossible_configs(kwargs, match):
    options = dict(frame_sizes=[4, 8], dim=8, seq_len=32, q_levels=Q)
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SampleRNN(**options)


@pytest.mark.slow
def test_samplernn_learns_a_tone_below_one_bit_per_sample():
    sample_rate = 8000
    t = np.arange(sample_rate * 4) / sample_rate
    tone = 0.6 * np.sin(2 * np.pi * 250.0 * t)
    source = ArraySource([tone[:16000], tone[16000:]], sample_rate, splits=["train", "valid"])
    model = SampleRNN(frame_sizes=[4, 16], dim=32, emb_size=16, q_levels=64, seq_len=64,
                      quantization="linear", weight_norm=True, sample_rate=sample_rate)
    options = dict(batch_size=8, example_seconds=1.0, **model.data_options())
    train = pipelines.tbptt_dataset(source, "train", seed=0, **options)
    valid = pipelines.tbptt_dataset(source, "valid", repeat=False, **options)
    model.compile(optimizer=keras.optimizers.Adam(3e-3, global_clipnorm=5.0))
    model.fit(train, epochs=1, steps_per_epoch=150, verbose=0)
    bits = model.evaluate(valid, return_dict=True, verbose=0)["bits_per_sample"]
    assert bits < 1.0, bits


@pytest.mark.slow
def test_samplernn_mixed_bfloat16_training_carries_float32_state(rnn_type="lstm"):
    """Under the mixed_bfloat16 policy a TBPTT step trains, and the state it carries to the
    next subsequence stays float32 (and changes the next step's loss)."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _model(rnn_type=rnn_type)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        trained = model.train_on_batch(_batch(model, seed=1), return_dict=True)
        model.test_on_batch(_batch(model, seed=1), return_dict=True)
        carried = [keras.ops.convert_to_numpy(v) for v in model._eval_state.variables]
        continued = model.test_on_batch(_batch(model, seed=2, reset=False), return_dict=True)
        fresh = model.test_on_batch(_batch(model, seed=2, reset=True), return_dict=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(trained["loss"]) and np.isfinite(continued["loss"])
    assert all(state.dtype == np.float32 and state.shape[0] == 2 for state in carried)
    assert continued["loss"] != fresh["loss"]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_samplernn_mixed_float16_tbptt_step_equals_float32_step(rnn_type):
    """A loss-scaled TBPTT step under mixed_float16 (two subsequences: the second continues the
    carried state) keeps float32 weights and carried state, gives a finite loss, and moves the
    weights as the float32 step does."""
    updates, losses = {}, {}
    try:
        for policy in ("float32", "mixed_float16"):
            keras.mixed_precision.set_global_policy(policy)
            keras.utils.set_random_seed(5)
            model = _model(rnn_type=rnn_type, num_rnn_layers=1)
            sgd = keras.optimizers.SGD(1.0)
            model.compile(optimizer=keras.optimizers.LossScaleOptimizer(sgd)
                          if policy == "mixed_float16" else sgd)
            model.train_on_batch(_batch(model, seed=1))
            before = [w.numpy() for w in model.trainable_weights]
            losses[policy] = model.train_on_batch(_batch(model, seed=2, reset=False),
                                                  return_dict=True)["loss"]
            updates[policy] = np.concatenate([(w.numpy() - b).ravel()
                                              for w, b in zip(model.trainable_weights, before)])
            assert all(w.dtype == "float32" for w in model.weights)
            assert all(v.dtype == tf.float32 for v in model._train_state.variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(losses["mixed_float16"])
    np.testing.assert_allclose(losses["mixed_float16"], losses["float32"], rtol=1e-2)
    error = np.linalg.norm(updates["mixed_float16"] - updates["float32"])
    assert error < 0.1 * np.linalg.norm(updates["float32"])


@pytest.mark.parametrize("policy, atol", [("mixed_float16", 0.02), ("mixed_bfloat16", 0.2)])
@pytest.mark.parametrize("weight_norm", [False, True])
def test_samplernn_generation_under_mixed_precision_follows_training_logits(policy, atol,
                                                                              weight_norm):
    """The generation loop runs in the policy's compute dtype (its steps read the weights
    outside ``__call__``, where Keras does not cast them; ``linear.frozen_kernels`` casts the
    weight-normalised kernels) and still computes the training pass's logits, to that dtype's
    rounding."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = _model(frame_sizes=(2, 4, 8), rnn_type="lstm", weight_norm=weight_norm)
        samples = _batch(model)["samples"]
        expected = tf.cast(model({"samples": samples}), tf.float32)
        got = model.generation_logits(samples)
        codes, audio = model.generate(20, batch_size=2, seed=0, prime=np.zeros(9, np.float32))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    np.testing.assert_allclose(got, expected, atol=atol)
    assert codes.shape == (2, 20) and np.all(np.isfinite(audio))

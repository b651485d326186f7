import json

import numpy as np
import pytest
import tensorflow as tf

from samplenet import quantization as quant
from samplenet import config as schema
from samplenet.models.wavenet import WaveNet
from samplenet.ops.receptive_field import dependent_positions, measured_receptive_field
from samplenet.testing import assert_model_round_trip

SMALL = dict(dilations=[1, 2, 4, 1, 2], filter_width=2, residual_channels=8,
             dilation_channels=8, skip_channels=16, q_levels=16, target_len=16)
HOP, MELS, CLASSES = 4, 3, 3
CONDITIONING = {
    "none": {},
    "global": dict(num_classes=CLASSES),
    "local": dict(local_condition_channels=MELS, local_condition_hop=HOP),
    "both": dict(num_classes=CLASSES, local_condition_channels=MELS, local_condition_hop=HOP,
                 embed_inputs=True),
}
RNG = np.random.default_rng(0)
FEATURES = RNG.standard_normal((2, 12, MELS)).astype(np.float32)
PRIME = (0.5 * np.sin(np.arange(23) * 0.7)[None] * np.array([[1.0], [0.5]])).astype(np.float32)


def _small(**overrides):
    return WaveNet(**{**SMALL, **overrides})


_MODELS = {}


def _shared(kind):
    """One built model per conditioning kind for the whole module, so that each compiled
    generation loop is traced once."""
    if kind not in _MODELS:
        tf.keras.utils.set_random_seed(7)
        _MODELS[kind] = _small(**CONDITIONING[kind])
        _MODELS[kind].ensure_built()
    return _MODELS[kind]


@pytest.fixture(params=["none", "both"])
def generator(request):
    """Without conditioning, and with global + local conditioning and embedded inputs."""
    return _shared(request.param)


def _generation_kwargs(model, batch_size=2):
    kwargs = {}
    if model.num_classes:
        kwargs["condition"] = [0, 2][:batch_size]
    if model.local_condition_channels:
        kwargs["local_condition"] = FEATURES[:batch_size]
    return kwargs


def _parallel_inputs(model, samples):
    inputs = {"samples": samples}
    if model.num_classes:
        inputs["label"] = np.array([1, 2], np.int32)[:samples.shape[0]]
    if model.local_condition_channels:
        inputs["features"] = FEATURES[:samples.shape[0], :samples.shape[1] // HOP]
    return inputs


# ------------------------------------------------------------------------- structure ---
def test_wavenet_preset_receptive_field_is_5117():
    model = schema.build_model("wavenet")
    assert model.receptive_field == 5117
    assert model.layer_dilations == tuple([2 ** i for i in range(10)] * 5)
    assert model.data_options()["context"] == 5117


def test_wavenet_build_model_overrides_and_toy_preset():
    assert schema.build_model("wavenet", num_stacks=2).receptive_field == 2 * 1023 + 2
    toy = schema.build_model("wavenet_toy")
    assert isinstance(toy, WaveNet) and toy.family == "wavenet"
    toy.ensure_built()
    assert toy.count_params() < 100_000


@pytest.mark.parametrize("dilations,filter_width,input_width", [
    ([1, 2, 4], 1, 2), ([1, 2, 4, 8], 2, 2), ([1, 3, 2], 3, 1), ([2, 1], 3, 4)])
def test_wavenet_measured_receptive_field_equals_formula(dilations, filter_width, input_width):
    model = _small(dilations=dilations, filter_width=filter_width, input_width=input_width)
    model.ensure_built()
    length = model.receptive_field + 10
    assert measured_receptive_field(model.logits_from_encoded, length,
                                    channels=model.q_levels) == model.receptive_field
    expected = (filter_width - 1) * sum(dilations) + input_width
    assert model.receptive_field == expected


def test_wavenet_logits_depend_on_no_later_sample():
    model = _small(**CONDITIONING["both"])  # embedded inputs: residual_channels wide
    samples = RNG.integers(0, 16, (2, 40)).astype(np.int32)
    before = model(_parallel_inputs(model, samples)).numpy()
    changed = samples.copy()
    changed[:, 25] = (changed[:, 25] + 5) % 16
    after = model(_parallel_inputs(model, changed)).numpy()
    np.testing.assert_array_equal(before[:, :25], after[:, :25])
    assert np.abs(before[:, 25] - after[:, 25]).max() > 1e-4
    label_vector = model._label_vector(tf.constant([1]))
    local = tf.constant(RNG.standard_normal((1, 40, MELS)), tf.float32)
    positions = dependent_positions(lambda x: model.logits_from_encoded(x, label_vector, local),
                                    40, position=30, channels=model.residual_channels)
    np.testing.assert_array_equal(positions, np.arange(30 - model.receptive_field + 1, 31))


@pytest.mark.parametrize("kind", sorted(CONDITIONING))
def test_wavenet_round_trips(kind):
    model = _shared(kind)
    samples = RNG.integers(0, 16, (2, 24)).astype(np.int32)
    output = assert_model_round_trip(model, _parallel_inputs(model, samples))
    assert output.shape == (2, 24, 16)
    rebuilt = WaveNet.from_config(json.loads(json.dumps(model.get_config())))
    assert rebuilt.get_config() == model.get_config()


def test_wavenet_example_batch_runs_and_matches_data_options():
    model = _small(**CONDITIONING["both"])
    batch = model.example_batch(3)
    assert model(batch).shape == (3, batch["samples"].shape[1], 16)
    options = model.data_options()
    assert options["context"] == model.receptive_field
    assert options["with_labels"] is True
    assert (options["context"] + options["target_len"]) % HOP == 0
    assert options["target_len"] >= SMALL["target_len"]
    assert options["local_condition"] == {"kind": "log-mel", "hop": HOP, "num_mels": MELS,
                                          "frame_length": 4 * HOP}
    assert _small().data_options()["local_condition"] is None


# ------------------------------------------------------------------------ consistency ---
SEQUENCE_LEN = PRIME.shape[1] + 6  # one length for every teacher-forced run: one trace


def test_wavenet_teacher_forced_fast_logits_equal_parallel_logits(generator):
    model = generator
    samples = RNG.integers(0, 16, (2, SEQUENCE_LEN)).astype(np.int32)
    inputs = _parallel_inputs(model, samples)
    parallel = model(inputs).numpy()
    fast = model.teacher_forced_logits(samples, label=inputs.get("label"),
                                       features=inputs.get("features"))
    np.testing.assert_allclose(fast, parallel, atol=1e-4)


@pytest.mark.parametrize("with_prime", [False, True])
def test_wavenet_fast_generation_equals_naive_generation(generator, with_prime):
    model = generator
    kwargs = dict(num_samples=6, batch_size=2, temperature=[1.0, 0.7], seed=5,
                  prime=PRIME if with_prime else None, **_generation_kwargs(model))
    fast_codes, fast_audio = model.generate(**kwargs)
    naive_codes, naive_logits = model.naive_generate(**kwargs)
    np.testing.assert_array_equal(fast_codes, naive_codes)
    np.testing.assert_array_equal(fast_audio, quant.decode(naive_codes, 16, model.quantization))
    if with_prime:  # the prime is longer than the receptive field: no silence padding
        # The fast loop's logits at every generated step equal the naive ones.
        assert PRIME.shape[1] >= model.receptive_field
        sequence = np.concatenate([quant.encode(PRIME, 16, model.quantization), fast_codes],
                                  axis=1)
        inputs = _parallel_inputs(model, sequence)
        fast_logits = model.teacher_forced_logits(sequence, label=kwargs.get("condition"),
                                                  features=inputs.get("features"))
        start = PRIME.shape[1] - 1
        np.testing.assert_allclose(fast_logits[:, start:start + 6], naive_logits, atol=1e-4)


def test_wavenet_generation_in_chunks_equals_one_chunk(generator):
    model = generator
    kwargs = dict(batch_size=2, seed=11, prime=PRIME, **_generation_kwargs(model))
    whole_codes, whole_audio = model.generate(6, chunk_samples=6, **kwargs)
    chunks = list(model.generate_chunks(6, chunk_samples=3, **kwargs))
    assert [c.shape for c, _ in chunks] == [(2, 3), (2, 3)]
    np.testing.assert_array_equal(np.concatenate([c for c, _ in chunks], axis=1), whole_codes)
    np.testing.assert_array_equal(np.concatenate([a for _, a in chunks], axis=1), whole_audio)


def test_wavenet_generation_same_seed_same_codes_other_seed_other_codes():
    model = _shared("none")
    first = model.generate(6, batch_size=2, seed=1)[0]
    np.testing.assert_array_equal(first, model.generate(6, batch_size=2, seed=1)[0])
    assert not np.array_equal(first, model.generate(6, batch_size=2, seed=2)[0])


def test_wavenet_priming_continues_from_the_last_receptive_field_of_the_prime():
    model = _shared("none")
    rf = model.receptive_field
    long_prime = np.concatenate([np.full((2, 9), 0.9, np.float32), PRIME], axis=1)
    changed_early = long_prime.copy()
    changed_early[:, :long_prime.shape[1] - rf] = -0.9
    expected = model.generate(6, batch_size=2, seed=3, prime=long_prime)[0]
    np.testing.assert_array_equal(
        model.generate(6, batch_size=2, seed=3, prime=changed_early)[0], expected)
    np.testing.assert_array_equal(
        model.generate(6, batch_size=2, seed=3, prime=long_prime[:, -rf:])[0], expected)
    # A prime shorter than the receptive field continues after silence.
    silence = np.zeros((1, rf), np.float32)
    short = PRIME[:1, :4]
    np.testing.assert_array_equal(
        model.generate(6, seed=3, prime=short)[0],
        model.generate(6, seed=3, prime=np.concatenate([silence, short], axis=1))[0])


# --------------------------------------------------------------------------- training ---
def _window_batch(model, batch_size=2, context=None, target_len=12):
    context = model.receptive_field if context is None else context
    audio = 0.6 * np.sin(np.arange(context + target_len) * 0.3 + np.arange(batch_size)[:, None])
    samples = quant.encode(audio, model.q_levels, model.quantization)
    mask = np.ones((batch_size, target_len), np.float32)
    mask[1, -4:] = 0.0
    batch = {"samples": samples, "audio": audio.astype(np.float32), "mask": mask}
    batch.update({k: v for k, v in _parallel_inputs(model, samples).items() if k != "samples"})
    return batch


def test_wavenet_loss_is_cross_entropy_of_call_logits_on_unmasked_targets():
    model = _shared("both")
    batch = _window_batch(model)
    model.reset_metrics()
    metrics = model.test_step(batch)
    context = model.receptive_field
    logits = model(batch).numpy()[:, context - 1:-1]
    targets = batch["samples"][:, context:]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    expected = (nll * batch["mask"]).sum() / batch["mask"].sum()
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-4)
    np.testing.assert_allclose(float(metrics["bits_per_sample"]), expected / np.log(2), rtol=1e-4)
    # Masked targets do not count.
    changed = dict(batch, samples=batch["samples"].copy())
    changed["samples"][1, -1] = (changed["samples"][1, -1] + 3) % 16
    model.reset_metrics()
    np.testing.assert_allclose(float(model.test_step(changed)["loss"]), expected, rtol=1e-4)


def test_wavenet_eats_the_windows_pipeline_with_local_conditioning():
    from samplenet import data
    from samplenet.data import pipelines
    model = _small(local_condition_channels=MELS, local_condition_hop=HOP, sample_rate=8000)
    source = data.from_spec("builtin:plucked?num_items=4&item_seconds=0.25&sample_rate=8000")
    batch = next(iter(pipelines.training_dataset(model, source, "train", batch_size=2)))
    options = model.data_options()
    assert batch["samples"].shape == (2, options["context"] + options["target_len"])
    assert batch["features"].shape == (2, batch["samples"].shape[1] // HOP, MELS)
    model.reset_metrics()
    assert np.isfinite(float(model.test_step(batch)["loss"]))


@pytest.mark.slow
def test_wavenet_short_fit_lowers_the_loss():
    import keras
    model = _small()
    batch = _window_batch(model, batch_size=4, target_len=64)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(dataset, steps_per_epoch=15, epochs=2, verbose=0).history
    assert set(history) == {"loss", "bits_per_sample", "accuracy"}
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    # Training ran the layers without model.__call__: the model still saves, loads, generates.
    assert_model_round_trip(model, batch)
    assert model.generate(3, seed=0)[0].shape == (1, 3)


# ------------------------------------------------------------------------- validation ---
@pytest.mark.parametrize("argument,value", [
    ("q_levels", 1), ("quantization", "cubic"), ("filter_width", 0), ("input_width", 0),
    ("dilations", []), ("dilations", [1, 0]), ("dilations", "124"), ("residual_channels", 0),
    ("dilation_channels", -1), ("skip_channels", 0), ("num_classes", -1),
    ("local_condition_channels", -2), ("local_condition_hop", 0), ("target_len", 0),
    ("embed_inputs", "yes"), ("num_stacks", 0)])
def test_wavenet_rejects_impossible_configs(argument, value):
    arguments = dict(SMALL)
    if argument == "num_stacks":
        arguments["dilations"] = None
    arguments[argument] = value
    with pytest.raises(ValueError, match=argument):
        WaveNet(**arguments)


@pytest.mark.parametrize("kind,kwargs,match", [
    ("none", dict(temperature=0.0), "temperature"),
    ("none", dict(num_samples=0), "num_samples"),
    ("none", dict(chunk_samples=0), "chunk_samples"),
    ("none", dict(condition=[1]), "condition"),
    ("none", dict(local_condition=FEATURES), "local_condition"),
    ("none", dict(prime=np.zeros((3, 5))), "prime"),
    ("both", dict(local_condition=FEATURES), "condition"),
    ("both", dict(condition=[0, 1]), "local_condition"),
    ("both", dict(condition=[0, 3], local_condition=FEATURES), "condition"),
    ("both", dict(condition=[0, 1], local_condition=FEATURES[:, :2], num_samples=9),
     "local_condition"),
    ("both", dict(condition=[0, 1], local_condition=FEATURES[:, :, :2]), "local_condition"),
])
def test_wavenet_generation_rejects_bad_arguments(kind, kwargs, match):
    arguments = {"num_samples": 4, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        _shared(kind).generate_chunks(**arguments)

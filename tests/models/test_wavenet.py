import json

import numpy as np
import pytest
import tensorflow as tf

from samplenet import quantization as quant
from samplenet.models import registry
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
    "both": dict(num_classes=CLASSES, local_condition_channels=MELS, local_condition_hop=HOP),
}
RNG = np.random.default_rng(0)
FEATURES = RNG.standard_normal((2, 12, MELS)).astype(np.float32)
PRIME = (0.5 * np.sin(np.arange(23) * 0.7)[None] * np.array([[1.0], [0.5]])).astype(np.float32)


def _small(**overrides):
    return WaveNet(**{**SMALL, **overrides})


@pytest.fixture(scope="module", params=sorted(CONDITIONING))
def conditioned(request):
    """(name, built model) for each conditioning kind, shared by the generation tests so that
    each compiled loop is built once."""
    keras_seed = 7
    tf.keras.utils.set_random_seed(keras_seed)
    model = _small(**CONDITIONING[request.param])
    model.ensure_built()
    return request.param, model


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
    model = registry.build_model("wavenet")
    assert model.receptive_field == 5117
    assert model.layer_dilations == tuple([2 ** i for i in range(10)] * 5)
    assert model.data_options()["context"] == 5117


def test_wavenet_build_model_overrides_and_toy_preset():
    assert registry.build_model("wavenet", num_stacks=2).receptive_field == 2 * 1023 + 2
    toy = registry.build_model("wavenet_toy")
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
    model = _small(**CONDITIONING["both"])
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
                                    40, position=30, channels=model.q_levels)
    np.testing.assert_array_equal(positions, np.arange(30 - model.receptive_field + 1, 31))


def test_wavenet_round_trips(conditioned):
    _, model = conditioned
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
def test_wavenet_teacher_forced_fast_logits_equal_parallel_logits(conditioned):
    _, model = conditioned
    samples = RNG.integers(0, 16, (2, 32)).astype(np.int32)
    inputs = _parallel_inputs(model, samples)
    parallel = model(inputs).numpy()
    fast = model.teacher_forced_logits(samples, label=inputs.get("label"),
                                       features=inputs.get("features"))
    np.testing.assert_allclose(fast, parallel, atol=1e-4)


@pytest.mark.parametrize("with_prime", [False, True])
def test_wavenet_fast_generation_equals_naive_generation(conditioned, with_prime):
    _, model = conditioned
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

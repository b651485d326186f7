import numpy as np
import pytest
import tensorflow as tf

from samplenet import data
from samplenet.data import pipelines
from samplenet import config as schema
from samplenet.models.linear_ar import LinearAR
from samplenet.testing import assert_model_round_trip
from samplenet.training.optimizers import make_optimizer

AR2_SPEC = "builtin:ar2?num_items=8&item_seconds=1&sample_rate=8000"


def _set_coefficients(model, lags, intercept):
    model.ensure_built()
    model.predictor.kernel.assign(np.array(lags[::-1], np.float32)[:, None, None])
    model.predictor.bias.assign([intercept])


@pytest.fixture(scope="module")
def trained():
    """The linear_ar preset (at 8 kHz) trained briefly on builtin:ar2 (a=-0.4, b=0.5) with its
    own train section, through the windows pipeline."""
    tf.keras.utils.set_random_seed(3)
    config = schema.config_for("linear_ar", {"sample_rate": 8000})
    model = schema.model_from_config(config)
    source = data.from_spec(AR2_SPEC)
    dataset = pipelines.training_dataset(model, source, "train",
                                         batch_size=config["train"]["batch_size"])
    model.compile(optimizer=make_optimizer(config["train"]))
    model.fit(dataset, steps_per_epoch=100, epochs=3, verbose=0)
    return model, source


def test_linear_ar_recovers_ar2_coefficients(trained):
    model, _ = trained
    lags, intercept = model.coefficients()
    np.testing.assert_allclose(lags, [-0.4, 0.5], atol=0.02)
    assert abs(intercept) < 0.01


def test_linear_ar_noise_std_matches_the_innovations(trained):
    model, source = trained
    innovation_std = source.generator.coefficients["scale"]  # noise 1.0, scaled with the series
    assert abs(model.noise_std - innovation_std) < 0.1 * innovation_std


def test_linear_ar_generated_audio_has_the_fitted_autocorrelation(trained):
    model, _ = trained
    _, audio = model.generate(4000, batch_size=2, seed=0)
    x = audio - audio.mean(axis=1, keepdims=True)
    lag1 = np.mean(np.sum(x[:, 1:] * x[:, :-1], 1) / np.sum(x * x, 1))
    assert abs(lag1 - (-0.4 / (1 - 0.5))) < 0.05  # rho_1 = a / (1 - b) = -0.8


def test_linear_ar_call_matches_numpy_reference():
    model = LinearAR(order=3)
    _set_coefficients(model, [0.3, -0.2, 0.1], 0.05)
    audio = np.random.default_rng(0).uniform(-1, 1, (2, 10)).astype(np.float32)
    padded = np.concatenate([np.zeros((2, 2)), audio], axis=1)
    expected = 0.05 + 0.3 * padded[:, 2:] - 0.2 * padded[:, 1:-1] + 0.1 * padded[:, :-2]
    np.testing.assert_allclose(model({"audio": audio}).numpy(), expected, atol=1e-6)


def test_linear_ar_loss_counts_only_unmasked_targets():
    model = LinearAR(order=2, target_len=6)
    _set_coefficients(model, [0.5, 0.0], 0.0)
    batch = model.example_batch(2)
    batch["audio"] = np.random.default_rng(1).uniform(-1, 1, (2, 8)).astype(np.float32)
    batch["mask"][1, -2:] = 0.0
    model.reset_metrics()
    loss = float(model.test_step(batch)["loss"])
    predictions = 0.5 * batch["audio"][:, 1:-1]
    errors = (predictions - batch["audio"][:, 2:]) ** 2
    np.testing.assert_allclose(loss, (errors * batch["mask"]).sum() / batch["mask"].sum(),
                               rtol=1e-5)
    batch["audio"][1, -1] = 5.0
    model.reset_metrics()
    np.testing.assert_allclose(float(model.test_step(batch)["loss"]), loss, rtol=1e-5)


def test_linear_ar_generation_without_noise_follows_the_recursion_from_the_prime():
    model = LinearAR(order=2)
    _set_coefficients(model, [0.9, -0.5], 0.01)  # untrained: noise_std 0
    assert model.noise_std == 0.0
    prime = np.array([[0.0, 0.3, -0.2]], np.float32)
    codes, audio = model.generate(20, seed=0, prime=prime, chunk_samples=7)
    history = [0.3, -0.2]
    for _ in range(20):
        history.append(0.01 + 0.9 * history[-1] - 0.5 * history[-2])
    np.testing.assert_allclose(audio[0], history[2:], atol=1e-5)
    assert codes.shape == (1, 20) and codes.dtype == np.int32


def test_linear_ar_generation_chunks_and_seeds(trained):
    model, _ = trained
    whole = model.generate(50, batch_size=2, seed=4)[1]
    np.testing.assert_array_equal(model.generate(50, batch_size=2, seed=4, chunk_samples=20)[1],
                                  whole)
    assert not np.array_equal(model.generate(50, batch_size=2, seed=5)[1], whole)


def test_linear_ar_round_trip_and_registry():
    model = schema.build_model("linear_ar")
    assert isinstance(model, LinearAR) and model.receptive_field == 2
    _set_coefficients(model, [0.2, 0.1], 0.0)
    assert_model_round_trip(model, model.example_batch(2))


@pytest.mark.parametrize("arguments,match", [(dict(order=0), "order"),
                                             (dict(q_levels=1), "q_levels"),
                                             (dict(target_len=0), "target_len")])
def test_linear_ar_rejects_bad_arguments(arguments, match):
    with pytest.raises(ValueError, match=match):
        LinearAR(**arguments)


@pytest.mark.parametrize("kwargs,match", [(dict(condition=[0]), "condition"),
                                          (dict(temperature=-1.0), "temperature"),
                                          (dict(num_samples=0), "num_samples")])
def test_linear_ar_generation_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearAR().generate_chunks(**{"num_samples": 4, **kwargs})


def test_linear_ar_mixed_float16_step_moves_the_weights_as_float32_does():
    """Under mixed_float16 the loss is scaled before the gradient (the LossScaleOptimizer
    divides it out again); without the scaling the step would be 2**15 times too small."""
    import keras
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((4, 64))).astype(np.float32)
    batch = {"audio": audio, "samples": np.zeros((4, 64), np.int32),
             "mask": np.ones((4, 64 - 2), np.float32)}
    moved = {}
    try:
        for policy in ("float32", "mixed_float16"):
            keras.mixed_precision.set_global_policy(policy)
            model = LinearAR(order=2, target_len=62)
            model.ensure_built()
            start = np.random.default_rng(1)
            for weight in model.trainable_weights:
                weight.assign(0.3 * start.standard_normal(weight.shape).astype(np.float32))
            before = [w.numpy().copy() for w in model.trainable_weights]
            model.compile(optimizer=make_optimizer({"optimizer": "sgd", "learning_rate": 0.1,
                                                    "clipnorm": 0.0,
                                                    "mixed_precision": policy}))
            model.train_on_batch(batch)
            moved[policy] = np.concatenate([(w.numpy() - b).ravel() for w, b in
                                            zip(model.trainable_weights, before)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.linalg.norm(moved["float32"]) > 0
    np.testing.assert_allclose(moved["mixed_float16"], moved["float32"], rtol=0.05, atol=1e-4)

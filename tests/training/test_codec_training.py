"""Tests of the codec's training (samplenet.training.codec_training): settings checks, the
objective's terms, adversarial training with the waveform curriculum, config / .keras /
checkpoint round trips, overfitting one clip, and runs of the trainer (a run loads as a plain
SoundStream and is evaluated as one; a resumed run continues its discriminator; ``codec_loss``
settings from the command line)."""
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from samplenet import config as schema
from samplenet import load_model
from samplenet.cli import train as train_cli
from samplenet.models.soundstream import SoundStream
from samplenet.testing import assert_model_round_trip
from samplenet.training import checkpoints, codec_losses, codec_metrics, trainer
from samplenet.training.codec_training import CodecTraining
from samplenet.training.optimizers import make_optimizer
from tests.models.test_soundstream import TINY, _audio
from tests.programs import assert_error

LOSS = {"mel_windows": [64, 128]}
GAN = {"adversarial": True, "discriminator_windows": [128, 64], "discriminator_channels": 4,
       "multiscale_waveform_weight": 1.0, "waveform_schedule": [[0, [1, 0]], [1, [0.5, 1]]]}


def _training(**settings):
    return CodecTraining(SoundStream(**TINY), **{**LOSS, **settings})


@pytest.mark.parametrize("overrides,name", [
    ({"l1_weight": -1.0}, "codec_loss.l1_weight"), ({"mel_windows": [1024]}, "mel_windows"),
    ({"stft_weight": -1.0}, "stft_weight"),
    ({"stft_weight": 1.0, "stft_windows": [1024]}, "stft_windows"),
    ({"adversarial": "yes"}, "adversarial"),
    ({"adversarial": True, "discriminator_windows": [2048]}, "discriminator_windows"),
    ({"waveform_schedule": [[0, [1, 1]]]}, "multiscale_waveform_weight"),
    ({"multiscale_waveform_weight": 1.0, "waveform_schedule": [[0, [1]]]}, "waveform_schedule"),
    ({"discriminator_learning_rate": 0}, "discriminator_learning_rate"),
    ({"num_mels": 0}, "num_mels"), ({"commitment_weight": "high"}, "commitment_weight"),
    ({"loudness_weight": 1.0}, "loudness_weight")])
def test_codec_training_rejects_bad_settings(overrides, name):
    with pytest.raises(ValueError, match=name):
        _training(**overrides)


def test_settings_default_to_the_config_section():
    settings = _training().settings
    assert dict(settings) == {**schema.CODEC_LOSS_DEFAULTS, **LOSS}
    assert settings["mel_weight"] == 0.0  # the default


def test_config_and_keras_round_trips_of_the_adversarial_training():
    training = _training(**GAN)
    assert CodecTraining.from_config(training.get_config()).get_config() == \
        training.get_config()
    assert_model_round_trip(training, _audio())


@pytest.mark.slow
def test_adversarial_training_with_curriculum_and_checkpoints():
    model = _training(**GAN)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    before = [w.numpy().copy() for w in model.discriminator.weights]
    data = tf.data.Dataset.from_tensors({"audio": _audio()}).repeat()
    history = model.fit(data, epochs=2, steps_per_epoch=1, verbose=0,
                        callbacks=model.training_callbacks())
    names = {"loss", "l1_loss", "mel_loss", "commitment_loss", "waveform_loss",
             "adversarial_loss", "feature_loss", "discriminator_loss", "perplexity_1",
             "perplexity_2", "perplexity_3", "si_sdr"}
    assert set(history.history) == names
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert model.codec.quantizer.initialized.numpy() == 1.0
    np.testing.assert_allclose(model.waveform_stage_weights.numpy(), [0.5, 1.0])
    assert int(model.discriminator_optimizer.iterations.numpy()) == 2
    assert int(model.optimizer.iterations.numpy()) == 2
    assert any(np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.discriminator.weights,
                                                                before))
    # The main optimizer holds slots for every trainable variable but moves only the codec's.
    assert len(model.optimizer.variables) > 2 * len(model.codec.encoder.trainable_variables)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        assert int(loaded.discriminator_optimizer.iterations.numpy()) == 2
        np.testing.assert_allclose(loaded(_audio()).numpy(), model(_audio()).numpy(), atol=1e-5)

        prefix = os.path.join(folder, "ckpt")
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(prefix)
        restored = _training(**GAN)
        restored.compile(optimizer=keras.optimizers.Adam(1e-3))
        restored.optimizer.build(restored.trainable_variables)
        status = tf.train.Checkpoint(model=restored, optimizer=restored.optimizer).read(prefix)
        status.assert_existing_objects_matched()
        assert int(restored.discriminator_optimizer.iterations.numpy()) == 2
        np.testing.assert_array_equal(restored.codec.quantizer.codebooks.numpy(),
                                      model.codec.quantizer.codebooks.numpy())


def _twins(**settings):
    """Two trainings of codecs with the same weights: default settings, and ``settings``."""
    plain, other = _training(), _training(**settings)
    other.codec.set_weights(plain.codec.get_weights())
    return plain, other


def test_stft_loss_term_is_reported_and_weighted_into_the_loss():
    audio = _audio()
    plain, with_stft = _twins(stft_weight=2.0, stft_windows=[64, 256])
    total, terms, _, reconstruction, _ = with_stft.objective(tf.constant(audio), False)
    expected = codec_losses.multiscale_stft_loss(audio, reconstruction, [64, 256])
    np.testing.assert_allclose(float(terms["stft_loss"]), float(expected), rtol=1e-5)
    plain_total = plain.objective(tf.constant(audio), False)[0]
    np.testing.assert_allclose(float(total), float(plain_total) + 2.0 * float(expected),
                               rtol=1e-5)
    assert "stft_loss" in {m.name for m in with_stft.metrics}
    assert "stft_loss" not in {m.name for m in plain.metrics}
    assert CodecTraining.from_config(with_stft.get_config()).get_config() == \
        with_stft.get_config()


def test_mel_loss_is_only_reported_at_weight_zero_and_weighted_in_otherwise():
    audio = tf.constant(_audio())
    off, on = _twins(mel_weight=0.5)
    assert off.settings["mel_weight"] == 0.0  # the default
    with tf.GradientTape(persistent=True) as tape:
        total_off, terms_off, _, reconstruction, _ = off.objective(audio, False)
        total_on, terms_on, _, _, _ = on.objective(audio, False)
    expected = codec_losses.multiscale_mel_loss(audio, reconstruction, 16000, [64, 128], 64)
    for terms in (terms_off, terms_on):
        np.testing.assert_allclose(float(terms["mel_loss"]), float(expected), rtol=1e-5)
    np.testing.assert_allclose(float(total_on), float(total_off) + 0.5 * float(expected),
                               rtol=1e-5)
    decoder_off = off.codec.decoder.trainable_variables
    assert all(g is None for g in tape.gradient(terms_off["mel_loss"], decoder_off))
    assert any(g is not None and np.abs(g.numpy()).max() > 0
               for g in tape.gradient(terms_on["mel_loss"], on.codec.decoder.trainable_variables))


def test_commitment_term_is_the_quantizers_mean_weighted_into_the_loss():
    audio = tf.constant(_audio())
    plain, heavier = _twins(commitment_weight=3.0)
    total, terms, _, _, details = plain.objective(audio, False)
    np.testing.assert_allclose(float(terms["commitment_loss"]),
                               float(tf.reduce_mean(details["commitment_losses"])), rtol=1e-6)
    np.testing.assert_allclose(float(heavier.objective(audio, False).total),
                               float(total) + 2.0 * float(terms["commitment_loss"]), rtol=1e-5)


def test_training_callbacks_are_empty_without_a_schedule():
    assert _training().training_callbacks() == []
    callbacks = _training(**GAN).training_callbacks()
    assert len(callbacks) == 1 and isinstance(callbacks[0], codec_losses.WaveformCurriculum)


@pytest.mark.slow
def test_short_training_run_overfits_one_clip():
    codec = SoundStream(channels=8, strides=[2, 2], latent_dim=8, num_quantizers=4,
                        codebook_size=16, segment_samples=2048)
    model = CodecTraining(codec, mel_windows=[64, 128, 256], l1_weight=1.0, mel_weight=0.01)
    t = np.arange(2048) / 16000
    envelope = np.exp(-20 * t)
    clip = envelope * (0.4 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 660 * t + 1)
                       + 0.05 * np.random.default_rng(0).normal(size=2048))
    clip = clip.astype(np.float32)[None]
    data = tf.data.Dataset.from_tensors({"audio": clip}).repeat()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = float(codec_metrics.si_sdr_db(clip[0], model(clip)[0]))
    history = model.fit(data, epochs=1, steps_per_epoch=250, verbose=0)
    after = model.evaluate(data, steps=1, verbose=0, return_dict=True)
    assert before < 0.0
    assert after["si_sdr"] > 8.0, (before, after)
    assert history.history["loss"][-1] > after["loss"] > 0


# ----- runs of the trainer ----------------------------------------------------------------
def _run_config():
    """A tiny adversarial codec run of 2 steps per epoch on 6 short sines."""
    return schema.config_for("soundstream", [
        *(f"{key}={value}" for key, value in TINY.items()),
        "data.spec=builtin:sines?num_items=6&item_seconds=0.5", "data.segment_seconds=0.032",
        "train.batch_size=2", "train.epochs=1", "train.steps_per_epoch=2",
        "train.validation_steps=1", "train.early_stopping_patience=0",
        "codec_loss.mel_windows=[64, 128]", "codec_loss.adversarial=true",
        "codec_loss.discriminator_windows=[128, 64]", "codec_loss.discriminator_channels=4"])


def _restored_training(config, folder):
    """A ``CodecTraining`` of ``config`` restored (with its optimizer) from ``folder``."""
    training = CodecTraining(schema.model_from_config(config), **config["codec_loss"])
    optimizer = make_optimizer(config["train"])
    training.compile(optimizer=optimizer)
    optimizer.build(training.trainable_variables)
    checkpoints.restore(training, optimizer, folder)
    return training


def _saved_discriminator(folder):
    """``{path below the discriminator: value}`` of the discriminator in checkpoint
    ``folder``."""
    reader = tf.train.load_checkpoint(str(folder / checkpoints.PREFIX))
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    return {name[len("discriminator/"):-len(suffix)].replace(".S", "/"): reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()
            if name.startswith("discriminator/") and name.endswith(suffix)}


@pytest.mark.slow
def test_adversarial_run_loads_as_a_plain_soundstream_and_resumes_its_discriminator(tmp_path):
    config = _run_config()
    run = tmp_path / "run"
    history = trainer.train(config, run, verbose=0)
    assert {"adversarial_loss", "discriminator_loss", "val_si_sdr"} <= set(history)
    first = checkpoints.latest_checkpoint(run / "checkpoints")

    plain = load_model(run)
    assert type(plain) is SoundStream and not hasattr(plain, "discriminator")
    training = _restored_training(config, first)
    audio = _audio((1, 1000))
    np.testing.assert_array_equal(plain.encode(audio).numpy(),
                                  training.codec.encode(audio).numpy())
    np.testing.assert_array_equal(plain.decode(plain.encode(audio)).numpy(),
                                  training.codec.decode(training.codec.encode(audio)).numpy())
    saved = _saved_discriminator(first)
    restored = checkpoints.weights_by_path(training.discriminator)
    assert saved.keys() == restored.keys() and saved
    for key, value in saved.items():
        np.testing.assert_array_equal(restored[key].numpy(), value)
    fresh = CodecTraining(schema.model_from_config(config), **config["codec_loss"])
    assert any(np.abs(w.numpy() - restored[k].numpy()).max() > 0
               for k, w in checkpoints.weights_by_path(fresh.discriminator).items())
    assert int(training.discriminator_optimizer.iterations.numpy()) == 2
    # Evaluation scores the plain codec, without the discriminator's terms.
    trained, untrained = trainer.evaluate_run(run, split="all")
    for results in (trained, untrained):
        assert {"loss", "l1_loss", "mel_loss", "commitment_loss", "si_sdr"} <= set(results)
        assert "adversarial_loss" not in results and results["num_files"] == 6

    trainer.train(config, run, resume=True, epochs=2, verbose=0)
    second = checkpoints.latest_checkpoint(run / "checkpoints")
    assert second != first
    resumed = _restored_training(config, second)
    assert int(resumed.discriminator_optimizer.iterations.numpy()) == 4
    assert int(resumed.optimizer.iterations.numpy()) == 4


def test_train_cli_sets_codec_loss_keys(tmp_path):
    flag_values = flags.FlagValues()
    train_cli.define_flags(flag_values)
    flag_values(["train", "--model=soundstream", "--set=codec_loss.mel_weight=1",
                 "--set=codec_loss.adversarial=true"])
    config, _ = train_cli.build_config(flag_values)
    assert config["codec_loss"]["mel_weight"] == 1.0
    assert config["codec_loss"]["adversarial"] is True


def test_negative_codec_loss_weight_is_one_error_naming_the_key(run_program, tmp_path):
    result = run_program("train", "--model=soundstream", "--set=codec_loss.mel_weight=-1",
                         f"--logdir={tmp_path / 'run'}", "--verbose=0")
    assert_error(result, "codec_loss.mel_weight", "-1")
    assert not (tmp_path / "run").exists()

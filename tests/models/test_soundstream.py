"""Tests of the SoundStream codec model: preset and bitrate, any-length input, causality,
code round trip, streaming equal to whole-file coding, training steps (plain, adversarial,
downsampled-waveform curriculum), config / .keras / checkpoint round trips, overfitting."""
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from samplenet import config as schema
from samplenet.models.soundstream import SoundStream
from samplenet.testing import assert_model_round_trip
from samplenet.training import codec_losses, codec_metrics

TINY = {"channels": 4, "strides": [2, 4], "latent_dim": 6, "num_quantizers": 3,
        "codebook_size": 8, "segment_samples": 512, "mel_windows": [64, 128]}
HOP = 8
GAN = {"adversarial": True, "discriminator_windows": [128, 64], "discriminator_channels": 4,
       "multiscale_waveform_weight": 1.0, "waveform_schedule": [[0, [1, 0]], [1, [0.5, 1]]]}


def _audio(shape=(2, 512), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(shape[1]) / 16000
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 800, (shape[0], 1)) * t)
    return (tone + 0.05 * rng.normal(size=shape)).astype(np.float32)


def _tiny(**overrides):
    return SoundStream(**{**TINY, **overrides})


def test_preset_is_a_4_kbps_codec_at_16_khz():
    config = schema.config_for("soundstream")
    model = schema.model_from_config(config)
    assert isinstance(model, SoundStream)
    assert (model.sample_rate, model.hop, model.frame_rate) == (16000, 320, 50.0)
    assert model.bitrate_kbps() == pytest.approx(4.0)
    assert model.bitrate_kbps(2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="num_quantizers"):
        model.bitrate_kbps(9)
    assert model.data_kind == "segments"
    assert model.data_options() == {"segment_samples": 16000}
    assert model.example_batch(3)["audio"].shape == (3, 16000)
    assert config["data"]["segment_seconds"] * 16000 == model.segment_samples


@pytest.mark.parametrize("overrides,name", [
    ({"channels": 0}, "channels"), ({"strides": [2, 0]}, "strides"),
    ({"num_quantizers": 0}, "num_quantizers"), ({"codebook_size": 1.5}, "codebook_size"),
    ({"l1_weight": -1.0}, "l1_weight"), ({"mel_windows": [1024]}, "mel_windows"),
    ({"stft_weight": -1.0}, "stft_weight"),
    ({"stft_weight": 1.0, "stft_windows": [1024]}, "stft_windows"),
    ({"adversarial": "yes"}, "adversarial"), ({"quantizer_dropout": 2.0}, "quantizer_dropout"),
    ({"adversarial": True, "discriminator_windows": [2048]}, "discriminator_windows"),
    ({"waveform_schedule": [[0, [1, 1]]]}, "multiscale_waveform_weight"),
    ({"multiscale_waveform_weight": 1.0, "waveform_schedule": [[0, [1]]]}, "waveform_schedule"),
    ({"discriminator_learning_rate": 0}, "discriminator_learning_rate"),
    ({"weight_norm": 1}, "weight_norm"),
    ({"zero_init_residual": "no"}, "zero_init_residual")])
def test_soundstream_rejects_bad_arguments(overrides, name):
    with pytest.raises(ValueError, match=name):
        _tiny(**overrides)


@pytest.mark.parametrize("length", [1000, 1777])
def test_any_input_length_gives_output_of_that_length(length):
    model = _tiny()
    audio = _audio((2, length))
    assert model(audio).shape == (2, length)
    assert model({"audio": audio}).shape == (2, length)
    codes = model.encode(audio)
    assert codes.shape == (2, 3, -(-length // HOP)) and codes.dtype == tf.int32
    assert model.decode(codes).shape == (2, codes.shape[-1] * HOP)
    assert model.decode(codes, num_samples=length).shape == (2, length)


def test_codec_output_before_a_hop_is_independent_of_later_input():
    model = _tiny()
    audio = _audio((1, 20 * HOP))
    base = model(audio).numpy()
    for t in (5 * HOP, 5 * HOP + 3, 17 * HOP + 7):
        changed = audio.copy()
        changed[0, t:] = -changed[0, t:]
        start = (t // HOP) * HOP
        np.testing.assert_array_equal(model(changed).numpy()[:, :start], base[:, :start])


def test_decode_of_encode_equals_the_model_output():
    model = _tiny()
    audio = _audio((2, 1001))
    np.testing.assert_allclose(model.decode(model.encode(audio), 1001).numpy(),
                               model(audio).numpy(), atol=1e-6)
    fewer = model.encode(audio, num_quantizers=2)
    assert fewer.shape == (2, 2, 126)
    np.testing.assert_array_equal(fewer.numpy(), model.encode(audio).numpy()[:, :2])


def test_streaming_encode_and_decode_equal_whole_file_coding():
    model = _tiny()
    audio = _audio((2, 45 * HOP + 5))
    bounds = [0, HOP, 3 * HOP, 20 * HOP, 45 * HOP, audio.shape[1]]
    chunks = [audio[:, a:b] for a, b in zip(bounds, bounds[1:])]
    streamed = np.concatenate(list(model.encode_stream(chunks)), axis=-1)
    whole = model.encode(audio).numpy()
    np.testing.assert_array_equal(streamed, whole)

    frames = [0, 1, 2, 30, whole.shape[-1]]
    code_chunks = [whole[..., a:b] for a, b in zip(frames, frames[1:])]
    decoded = np.concatenate(list(model.decode_stream(code_chunks, num_samples=audio.shape[1])),
                             axis=-1)
    np.testing.assert_allclose(decoded, model.decode(whole, audio.shape[1]).numpy(), atol=1e-5)


def test_streaming_encode_rejects_a_chunk_after_a_partial_one():
    model = _tiny()
    audio = _audio((1, 40))
    with pytest.raises(ValueError, match="last chunk"):
        list(model.encode_stream([audio[:, :13], audio[:, 13:]]))


@pytest.mark.parametrize(
    "overrides", [{}, GAN, {"weight_norm": True}, {"zero_init_residual": False}],
    ids=["plain", "adversarial", "weight_norm", "plain_init"])
def test_config_and_keras_round_trips(overrides):
    model = _tiny(**overrides)
    assert SoundStream(**model.get_config()).get_config() == model.get_config()
    assert_model_round_trip(model, _audio())


@pytest.mark.slow
def test_adversarial_training_with_curriculum_and_checkpoints():
    model = _tiny(**GAN)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    model.ensure_built()
    before = [w.numpy().copy() for w in model.discriminator.weights]
    data = tf.data.Dataset.from_tensors({"audio": _audio()}).repeat()
    history = model.fit(data, epochs=2, steps_per_epoch=1, verbose=0,
                        callbacks=model.training_callbacks())
    names = {"loss", "l1_loss", "mel_loss", "commitment_loss", "waveform_loss",
             "adversarial_loss", "feature_loss", "discriminator_loss", "perplexity_1",
             "perplexity_2", "perplexity_3", "si_sdr"}
    assert set(history.history) == names
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert model.quantizer.initialized.numpy() == 1.0
    np.testing.assert_allclose(model.waveform_stage_weights.numpy(), [0.5, 1.0])
    assert int(model.discriminator_optimizer.iterations.numpy()) == 2
    assert int(model.optimizer.iterations.numpy()) == 2
    assert any(np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.discriminator.weights,
                                                                before))
    # The main optimizer holds slots for every trainable variable but moves only the codec's.
    assert len(model.optimizer.variables) > 2 * len(model.encoder.trainable_variables)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        assert int(loaded.discriminator_optimizer.iterations.numpy()) == 2
        np.testing.assert_allclose(loaded(_audio()).numpy(), model(_audio()).numpy(), atol=1e-5)

        prefix = os.path.join(folder, "ckpt")
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(prefix)
        restored = _tiny(**GAN)
        restored.compile(optimizer=keras.optimizers.Adam(1e-3))
        restored.ensure_built()
        restored.optimizer.build(restored.trainable_variables)
        status = tf.train.Checkpoint(model=restored, optimizer=restored.optimizer).read(prefix)
        status.assert_existing_objects_matched()
        assert int(restored.discriminator_optimizer.iterations.numpy()) == 2
        np.testing.assert_array_equal(restored.quantizer.codebooks.numpy(),
                                      model.quantizer.codebooks.numpy())


def test_stft_loss_term_is_reported_and_weighted_into_the_loss():
    audio = _audio()
    plain = _tiny()
    with_stft = _tiny(stft_weight=2.0, stft_windows=[64, 256])
    with_stft.ensure_built()
    plain.ensure_built()
    with_stft.set_weights(plain.get_weights())
    total, terms, _, reconstruction, _ = with_stft._objective(tf.constant(audio), False)
    expected = codec_losses.multiscale_stft_loss(audio, reconstruction, [64, 256])
    np.testing.assert_allclose(float(terms["stft_loss"]), float(expected), rtol=1e-5)
    plain_total = plain._objective(tf.constant(audio), False)[0]
    np.testing.assert_allclose(float(total), float(plain_total) + 2.0 * float(expected),
                               rtol=1e-5)
    assert "stft_loss" in {m.name for m in with_stft.metrics}
    assert "stft_loss" not in {m.name for m in plain.metrics}
    assert SoundStream(**with_stft.get_config()).get_config() == with_stft.get_config()


def test_mel_loss_is_only_reported_at_weight_zero_and_weighted_in_otherwise():
    audio = tf.constant(_audio())
    off, on = _tiny(), _tiny(mel_weight=0.5)
    assert off.mel_weight == 0.0  # the default
    for model in (off, on):
        model.ensure_built()
    on.set_weights(off.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        total_off, terms_off, _, reconstruction, _ = off._objective(audio, False)
        total_on, terms_on, _, _, _ = on._objective(audio, False)
    expected = codec_losses.multiscale_mel_loss(audio, reconstruction, 16000, [64, 128], 64)
    for terms in (terms_off, terms_on):
        np.testing.assert_allclose(float(terms["mel_loss"]), float(expected), rtol=1e-5)
    np.testing.assert_allclose(float(total_on), float(total_off) + 0.5 * float(expected),
                               rtol=1e-5)
    decoder_off = off.decoder.trainable_variables
    assert all(g is None for g in tape.gradient(terms_off["mel_loss"], decoder_off))
    assert any(g is not None and np.abs(g.numpy()).max() > 0
               for g in tape.gradient(terms_on["mel_loss"], on.decoder.trainable_variables))


def test_training_callbacks_are_empty_without_a_schedule():
    assert _tiny().training_callbacks() == []
    callbacks = _tiny(**GAN).training_callbacks()
    assert len(callbacks) == 1 and isinstance(callbacks[0], codec_losses.WaveformCurriculum)


@pytest.mark.slow
def test_short_training_run_overfits_one_clip():
    model = SoundStream(channels=8, strides=[2, 2], latent_dim=8, num_quantizers=4,
                        codebook_size=16, segment_samples=2048, mel_windows=[64, 128, 256],
                        l1_weight=1.0, mel_weight=0.01)
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

"""Tests of the SoundStream codec model: preset and bitrate, any-length input, causality,
code round trip, streaming equal to whole-file coding, the forward pass training uses, config
and .keras round trips. Its training (objective, discriminator, checkpoints, overfitting) is
tested in tests/training/test_codec_training.py."""
import numpy as np
import pytest
import tensorflow as tf

from samplenet import config as schema
from samplenet.models.soundstream import SoundStream, bitrate_kbps
from samplenet.testing import assert_model_round_trip

TINY = {"channels": 4, "strides": [2, 4], "latent_dim": 6, "num_quantizers": 3,
        "codebook_size": 8, "segment_samples": 512}
HOP = 8


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
    ({"quantizer_dropout": 2.0}, "quantizer_dropout"),
    ({"weight_norm": 1}, "weight_norm"),
    ({"zero_init_residual": "no"}, "zero_init_residual")])
def test_soundstream_rejects_bad_arguments(overrides, name):
    with pytest.raises(ValueError, match=name):
        _tiny(**overrides)


def test_soundstream_is_architecture_only():
    """The objective's settings are the training's (``codec_loss``), not the model's."""
    arguments = set(_tiny().get_config())
    assert not arguments & set(schema.CODEC_LOSS_DEFAULTS)
    assert not hasattr(_tiny(), "discriminator")


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
    "overrides", [{}, {"weight_norm": True}, {"zero_init_residual": False}],
    ids=["plain", "weight_norm", "plain_init"])
def test_config_and_keras_round_trips(overrides):
    model = _tiny(**overrides)
    assert SoundStream(**model.get_config()).get_config() == model.get_config()
    assert_model_round_trip(model, _audio())


def test_forward_returns_what_training_needs():
    model = _tiny()
    audio = _audio((2, 1001))
    result = model.forward(audio, num_quantizers=2)
    np.testing.assert_allclose(result.reconstruction.numpy(), model.decode(
        model.encode(audio, num_quantizers=2), 1001).numpy(), atol=1e-6)
    assert result.padded.shape == (2, 126 * HOP)
    np.testing.assert_array_equal(result.padded.numpy()[:, :1001], audio)
    assert result.details["codes"].shape == (2, 2, 126)
    assert result.details["commitment_losses"].shape == (2,)
    assert [stage.shape[1] for stage in result.stages] == [
        126 * HOP // factor for factor in model.decoder.stage_factors]


def test_bitrate_kbps_of_the_soundstream_preset():
    assert bitrate_kbps(16000, 320, 8, 1024) == pytest.approx(4.0)
    assert bitrate_kbps(24000, 320, 8, 1024) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="hop"):
        bitrate_kbps(16000, 0, 8, 1024)

"""Tests of the STFT discriminators: output shapes, config round trip, sensitivity."""
import numpy as np
import pytest

from samplenet.layers.stft_discriminator import MultiScaleSTFTDiscriminator, STFTDiscriminator
from samplenet.testing import assert_layer_contract


def _audio(shape=(2, 1024), seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def test_stft_discriminator_shapes():
    outputs = STFTDiscriminator(128, channels=4)(_audio())
    frames = 1 + (1024 - 128) // 32
    bins = [65, 65, 33, 17, 9, 9, 9]  # after each layer: frequency halved by convs 1-3
    assert len(outputs) == 6
    for output, num_bins in zip(outputs, bins[1:]):
        assert output.shape[:3] == (2, frames, num_bins)
    assert [o.shape[-1] for o in outputs] == [4] * 5 + [1]


def test_stft_discriminator_keeps_the_layer_contract():
    assert_layer_contract(STFTDiscriminator(64, channels=4), _audio((2, 256)))


def test_multiscale_discriminator_shapes_and_config_round_trip():
    layer = MultiScaleSTFTDiscriminator((256, 128, 64), channels=4)
    audio = _audio()
    outputs = layer(audio)
    assert len(outputs) == 3
    for scale, window in zip(outputs, (256, 128, 64)):
        assert scale[-1].shape[:2] == (2, 1 + (1024 - window) // (window // 4))
        assert scale[-1].shape[-1] == 1
    clone = MultiScaleSTFTDiscriminator.from_config(layer.get_config())
    clone(audio)
    clone.set_weights(layer.get_weights())
    for a, b in zip(outputs, clone(audio)):
        np.testing.assert_allclose(a[-1].numpy(), b[-1].numpy(), atol=1e-5)
    assert clone.get_config() == layer.get_config()


def test_discriminator_logits_depend_on_the_input():
    layer = STFTDiscriminator(64, channels=4)
    a = layer(_audio(seed=1))[-1].numpy()
    b = layer(_audio(seed=2))[-1].numpy()
    assert np.abs(a - b).max() > 1e-4


@pytest.mark.parametrize("kwargs", [{"window_length": 2}, {"window_length": 64, "channels": 0}])
def test_stft_discriminator_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        STFTDiscriminator(**kwargs)


def test_multiscale_discriminator_rejects_empty_windows():
    with pytest.raises(ValueError, match="window_lengths"):
        MultiScaleSTFTDiscriminator(())

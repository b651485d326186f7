"""Tests of the codec losses and of the downsampled-waveform curriculum."""
import numpy as np
import pytest
import tensorflow as tf

from samplenet.training import codec_losses

SAMPLE_RATE = 16000


def _audio(shape=(2, 1024), seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def test_reconstruction_losses_are_zero_for_identical_input_and_positive_otherwise():
    audio = _audio()
    other = _audio(seed=1)
    for loss in (codec_losses.waveform_l1_loss,
                 lambda a, b: codec_losses.multiscale_mel_loss(a, b, SAMPLE_RATE,
                                                               (64, 128, 256))):
        assert float(loss(audio, audio)) == pytest.approx(0.0, abs=1e-6)
        assert float(loss(audio, other)) > 0.1


def test_mel_loss_gradient_is_finite_at_the_optimum():
    audio = tf.constant(_audio())
    with tf.GradientTape() as tape:
        tape.watch(audio)
        loss = codec_losses.multiscale_mel_loss(audio, audio * 1.0, SAMPLE_RATE, (64, 256))
    gradient = tape.gradient(loss, audio).numpy()
    assert np.all(np.isfinite(gradient))


def test_mel_loss_matches_its_definition_at_one_scale():
    audio, other = _audio(), _audio(seed=1)
    from samplenet.ops import spectral
    a = spectral.mel_spectrogram(audio, SAMPLE_RATE, 128, 32, 64).numpy()
    b = spectral.mel_spectrogram(other, SAMPLE_RATE, 128, 32, 64).numpy()
    logs = np.log(a + 1e-5) - np.log(b + 1e-5)
    expected = np.abs(a - b).mean() + np.sqrt(64) * np.sqrt((logs ** 2).mean(-1)).mean()
    got = float(codec_losses.multiscale_mel_loss(audio, other, SAMPLE_RATE, (128,)))
    assert got == pytest.approx(expected, rel=1e-4)


def test_adversarial_losses_follow_the_hinge():
    real = [tf.constant([2.0, 0.5]), tf.constant([[1.5]])]
    fake = [tf.constant([-2.0, 0.0]), tf.constant([[-0.5]])]
    # Scale 1: relu(1 - real) = [0, 0.5] -> 0.25; relu(1 + fake) = [0, 1] -> 0.5.
    # Scale 2: 0 + 0.5. Mean over scales: (0.75 + 0.5) / 2.
    assert float(codec_losses.discriminator_hinge_loss(real, fake)) == pytest.approx(0.625)
    # Generator: relu(1 - fake): scale 1 mean(3, 1) = 2; scale 2: 1.5.
    assert float(codec_losses.generator_hinge_loss(fake)) == pytest.approx(1.75)


def test_feature_matching_is_relative_and_zero_for_equal_features():
    real = [[tf.ones((2, 3)) * 2.0, tf.ones((2, 5))]]
    assert float(codec_losses.feature_matching_loss(real, real)) == 0.0
    fake = [[tf.ones((2, 3)) * 3.0, tf.ones((2, 5)) * 1.5]]
    # |2 - 3| / 2 = 0.5 and |1 - 1.5| / 1 = 0.5.
    assert float(codec_losses.feature_matching_loss(real, fake)) == pytest.approx(0.5)


def test_downsampled_waveform_loss_compares_with_average_pooling():
    audio = np.arange(8, dtype=np.float32)[None]
    stages = [tf.constant([[1.5, 5.5]]), tf.constant(audio)]
    zero = codec_losses.downsampled_waveform_loss(audio, stages, [4, 1], [1.0, 1.0])
    assert float(zero) == 0.0
    shifted = [stages[0] + 1.0, stages[1] + 2.0]
    value = codec_losses.downsampled_waveform_loss(audio, shifted, [4, 1], [0.5, 2.0])
    assert float(value) == pytest.approx(0.5 * 1.0 + 2.0 * 2.0)


def test_waveform_schedule_is_validated_and_looked_up_by_epoch():
    schedule = codec_losses.check_waveform_schedule([[0, [1, 0]], [3, [0.5, 1]]], 2)
    assert schedule == [[0, [1.0, 0.0]], [3, [0.5, 1.0]]]
    assert [codec_losses.curriculum_weights(schedule, e) for e in (0, 2, 3, 10)] == \
        [[1.0, 0.0], [1.0, 0.0], [0.5, 1.0], [0.5, 1.0]]
    for bad in ([], [[1, [1, 1]]], [[0, [1]]], [[0, [1, -1]]], [[0, [1, 1]], [0, [1, 1]]],
                [[0.5, [1, 1]]], "linear"):
        with pytest.raises(ValueError, match="waveform_schedule"):
            codec_losses.check_waveform_schedule(bad, 2)


def test_waveform_curriculum_assigns_the_model_variable_each_epoch():
    class Holder:
        waveform_stage_weights = tf.Variable([0.0, 0.0])

    callback = codec_losses.WaveformCurriculum([[0, [1.0, 0.0]], [2, [0.0, 1.0]]])
    callback.set_model(Holder())
    seen = []
    for epoch in range(3):
        callback.on_epoch_begin(epoch)
        seen.append(Holder.waveform_stage_weights.numpy().tolist())
    assert seen == [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]


def test_stft_loss_is_zero_for_identical_input_with_a_finite_gradient():
    audio = tf.constant(_audio())
    with tf.GradientTape() as tape:
        tape.watch(audio)
        loss = codec_losses.multiscale_stft_loss(audio, audio * 1.0, (64, 256))
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(tape.gradient(loss, audio).numpy()))


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_stft_loss_of_a_gain_error_is_convergence_plus_log_gain(gain):
    # Y = g X in every bin: spectral convergence |1 - g| and log distance |ln g| at each scale.
    audio = _audio()
    got = float(codec_losses.multiscale_stft_loss(audio, gain * audio, (64, 128, 512)))
    assert got == pytest.approx(abs(1.0 - gain) + abs(np.log(gain)), rel=1e-3)


def test_stft_loss_sees_errors_at_dc_and_nyquist():
    # An offset or a Nyquist tone 15 dB below the signal changes only the edge bins, where
    # a mel filterbank has no weight; the full-band loss sees it (about 0.22 here).
    audio = _audio()
    time = audio.shape[1]
    for error in (np.full(time, 0.05), 0.05 * (-1.0) ** np.arange(time)):
        estimate = (audio + error).astype(np.float32)
        assert float(codec_losses.multiscale_stft_loss(audio, estimate, (64, 256))) > 0.1

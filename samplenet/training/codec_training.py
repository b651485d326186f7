"""Training of a neural audio codec, kept apart from its architecture as EnCodec keeps it: the
objective, the adversarial discriminator and its optimizer, the metrics and the callbacks.

``CodecTraining(codec, **settings)`` wraps an architecture-only codec
(``samplenet.models.SoundStream``) in the ``keras.Model`` that ``fit`` and ``evaluate`` run;
``samplenet.training.trainer`` wraps every model of kind ``"codec"``. Its settings are the
config's ``codec_loss`` section (keys and defaults: ``samplenet.config.CODEC_LOSS_DEFAULTS``).

Objective (``train_step``; audio ``(batch, time)`` float32 in [-1, 1], every term a scalar):
``l1_weight * L1(waveform) + mel_weight * multi-scale mel loss (mel_windows, num_mels) +
commitment_weight * mean commitment loss over quantizers`` [``+ stft_weight * full-band
multi-resolution STFT loss (stft_windows)``] [``+ multiscale_waveform_weight *
downsampled-waveform loss``] [``+ adversarial_weight * hinge + feature_weight * feature
matching``] (``samplenet.training.codec_losses``). With ``adversarial``, a
``MultiScaleSTFTDiscriminator`` is trained in the same step by its own Adam optimizer
(``discriminator_learning_rate``, betas 0.5, 0.9) on the hinge loss. ``test_step`` reports the
same losses without updating anything, with all quantizers. Scales: on an untrained codec the
mel loss is ~60-150 (its log term is weighted up to ``sqrt(max(mel_windows) / 2)``) and its
gradients ~100 times the waveform L1's (~0.02-0.3), and it is blind to phase, DC and Nyquist:
hence the default mel weight 0 (measurements in benchmarks/README.md, "Codec settings").

The commitment weight lives here with the other weights, not in the codec: the quantizer
computes the commitment loss (its codebooks follow EMA updates, not this loss), and its weight
changes nothing the codec computes, only how training mixes the encoder's gradients; a
checkpoint's codec does not depend on it.

Metrics: ``loss``, ``l1_loss``, ``mel_loss``, ``commitment_loss``, [``stft_loss``],
[``waveform_loss``], [``adversarial_loss``, ``feature_loss``, ``discriminator_loss``],
``perplexity_1`` ... ``perplexity_N`` (usage of each codebook in the batch, 1 ..
codebook_size) and ``si_sdr`` (dB, mean over the batch).

Downsampled-waveform objective (``multiscale_waveform_weight > 0``): after each decoder
upsampling block ``k`` (coarsest first), the channel mean of its output must match the input
averaged over windows of the upsampling still to come; stage ``k`` weighs
``waveform_stage_weights[k]``, a non-trainable variable set each epoch from
``waveform_schedule`` by ``codec_losses.WaveformCurriculum`` (``training_callbacks()`` returns
it); without a schedule every stage weighs 1.

Checkpoints (``samplenet.training.checkpoints``) save the codec's weights as the codec alone
would (``trained_model``), so a run loads as a plain codec, plus ``training_state()``: the
discriminator's weights and its optimizer's variables.
"""
import copy
from typing import NamedTuple

import keras
import tensorflow as tf

from samplenet.config import CODEC_LOSS_DEFAULTS
from samplenet.layers.stft_discriminator import MultiScaleSTFTDiscriminator
from samplenet.models.base import replica_share
from samplenet.training import checkpoints, codec_losses, codec_metrics
from samplenet.validation import check_bool, check_positive_int

SECTION = "codec_loss"
# Weights that must be numbers >= 0.
_WEIGHTS = ("l1_weight", "mel_weight", "stft_weight", "commitment_weight",
            "multiscale_waveform_weight", "adversarial_weight", "feature_weight")


def _key(name):
    return f"{SECTION}.{name}"


def _check_non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{_key(name)} must be a number >= 0, got {value!r}")


def _check_windows(name, windows, segment_samples=None):
    """STFT window lengths (>= 4 samples, and <= ``segment_samples`` unless None) as a list."""
    if not isinstance(windows, (list, tuple)) or not windows:
        raise ValueError(f"{_key(name)} must be a non-empty list of window lengths, got "
                         f"{windows!r}")
    for window in windows:
        check_positive_int(_key(name), window)
        if window < 4:
            raise ValueError(f"{_key(name)} must be >= 4 samples, got {window!r}")
    if segment_samples is not None and max(windows) > segment_samples:
        raise ValueError(f"{_key(name)} must not exceed segment_samples ({segment_samples}), "
                         f"got {list(windows)}")
    return list(windows)


def check_settings(settings, codec):
    """The ``codec_loss`` settings for training ``codec``, the missing keys at their defaults.

    Windows longer than the codec's ``segment_samples`` are refused where they are used (the
    mel windows always, the STFT windows with ``stft_weight > 0``, the discriminator's with
    ``adversarial``); ``waveform_schedule`` needs ``multiscale_waveform_weight > 0`` and one
    weight per stride (``codec_losses.check_waveform_schedule``). Returns a new dict (windows
    as lists, the schedule normalised); one ``ValueError`` naming ``codec_loss.KEY`` and the
    value otherwise.
    """
    unknown = sorted(set(settings) - set(CODEC_LOSS_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown {SECTION} keys {unknown}; known: "
                         f"{sorted(CODEC_LOSS_DEFAULTS)}")
    checked = {**copy.deepcopy(CODEC_LOSS_DEFAULTS), **settings}
    for name in _WEIGHTS:
        _check_non_negative(name, checked[name])
    for name in ("num_mels", "discriminator_channels"):
        check_positive_int(_key(name), checked[name])
    check_bool(_key("adversarial"), checked["adversarial"])
    rate = checked["discriminator_learning_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"{_key('discriminator_learning_rate')} must be > 0, got {rate!r}")
    for name, used in (("mel_windows", True), ("stft_windows", checked["stft_weight"] > 0),
                       ("discriminator_windows", checked["adversarial"])):
        checked[name] = _check_windows(name, checked[name],
                                       codec.segment_samples if used else None)
    if checked["waveform_schedule"] is not None:
        if not checked["multiscale_waveform_weight"] > 0:
            raise ValueError(f"{_key('waveform_schedule')} needs "
                             f"{_key('multiscale_waveform_weight')} > 0, got "
                             f"{checked['multiscale_waveform_weight']!r}")
        checked["waveform_schedule"] = codec_losses.check_waveform_schedule(
            checked["waveform_schedule"], len(codec.strides))
    return checked


class Objective(NamedTuple):
    """What ``CodecTraining.objective`` returns for a batch.

    Fields:
      total: the generator's loss, a float32 scalar (the weighted sum of ``terms``).
      terms: ``{metric name: float32 scalar}`` of every loss term (unweighted).
      discriminator_loss: the discriminator's hinge loss (scalar), or None without
        ``adversarial``.
      reconstruction: float32 ``(batch, time)``.
      details: the quantizer's details (``SoundStream.forward``).
    """

    total: tf.Tensor
    terms: dict
    discriminator_loss: object
    reconstruction: tf.Tensor
    details: dict


@keras.saving.register_keras_serializable(package="samplenet")
class CodecTraining(keras.Model):
    """The codec ``codec`` with its training objective, discriminator, metrics and callbacks.

    Args:
      codec: an architecture-only codec (``SoundStream``); built here if it is not, before
        anything else, so its weights keep the Keras paths of the codec alone.
      **settings: keys of the ``codec_loss`` section (``check_settings``).

    Call: ``model(inputs, training=False)`` is the codec's reconstruction. Attributes:
    ``codec``, ``settings`` (checked, defaults filled in), ``discriminator`` and
    ``discriminator_optimizer`` (with ``adversarial``), ``waveform_stage_weights`` (with
    ``multiscale_waveform_weight > 0``).
    """

    def __init__(self, codec, **settings):
        super().__init__(name="codec_training")
        settings = check_settings(settings, codec)
        codec.ensure_built()
        self.codec = codec
        self.settings = settings
        if settings["adversarial"]:
            self.discriminator = MultiScaleSTFTDiscriminator(
                settings["discriminator_windows"], settings["discriminator_channels"],
                name="discriminator")
            self.discriminator.build((None, None))
            self.discriminator_optimizer = keras.optimizers.Adam(
                learning_rate=settings["discriminator_learning_rate"], beta_1=0.5, beta_2=0.9,
                name="discriminator_optimizer")
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        if settings["multiscale_waveform_weight"] > 0:
            schedule = settings["waveform_schedule"]
            initial = (codec_losses.curriculum_weights(schedule, 0) if schedule
                       else [1.0] * len(codec.strides))
            self.waveform_stage_weights = self.add_weight(
                name="waveform_stage_weights", shape=(len(codec.strides),), trainable=False,
                initializer=keras.initializers.Constant(initial))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self._metric_names()}
        self.built = True

    def _metric_names(self):
        names = ["loss", "l1_loss", "mel_loss", "commitment_loss"]
        if self.settings["stft_weight"] > 0:
            names.append("stft_loss")
        if self.settings["multiscale_waveform_weight"] > 0:
            names.append("waveform_loss")
        if self.settings["adversarial"]:
            names += ["adversarial_loss", "feature_loss", "discriminator_loss"]
        return names + [f"perplexity_{i + 1}" for i in range(self.codec.num_quantizers)] + [
            "si_sdr"]

    # ----- what the trainer and the checkpoints ask ---------------------------------------
    @property
    def trained_model(self):
        """The codec: what checkpoints save under "model", keyed as the codec alone."""
        return self.codec

    def training_state(self):
        """The training's own variables a checkpoint holds besides the codec and the main
        optimizer: ``{"discriminator": {path below it: weight}, "discriminator_optimizer":
        {index: variable}}`` with ``adversarial``, else ``{}``. (The stage weights of the
        downsampled-waveform objective are not saved: the curriculum sets them at each epoch.)
        """
        if not self.settings["adversarial"]:
            return {}
        return {"discriminator": checkpoints.weights_by_path(self.discriminator),
                "discriminator_optimizer": checkpoints.variables_by_index(
                    self.discriminator_optimizer)}

    def training_callbacks(self):
        """Callbacks ``fit`` needs: the waveform curriculum, if scheduled."""
        schedule = self.settings["waveform_schedule"]
        return [] if schedule is None else [codec_losses.WaveformCurriculum(schedule)]

    def preview_arguments(self):
        """None: a codec has nothing to generate a preview from (see ``SampleWriter``)."""
        return None

    # ----- objective ---------------------------------------------------------------------
    def call(self, inputs, training=False):
        """The codec's reconstruction ``(batch, time)`` of ``inputs`` (see ``SoundStream``)."""
        return self.codec(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    @staticmethod
    def _audio(data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        return tf.cast(data["audio"] if isinstance(data, dict) else data, tf.float32)

    def objective(self, audio, training):
        """Forward pass and every loss term of audio ``(batch, time)``; an ``Objective``."""
        settings = self.settings
        reconstruction, padded, details, stages = self.codec.forward(audio, training=training)
        # With weight 0 the mel loss is only reported: no backward pass through it.
        mel_input = (reconstruction if settings["mel_weight"] > 0
                     else tf.stop_gradient(reconstruction))
        terms = {
            "l1_loss": codec_losses.waveform_l1_loss(audio, reconstruction),
            "mel_loss": codec_losses.multiscale_mel_loss(
                audio, mel_input, self.codec.sample_rate, settings["mel_windows"],
                settings["num_mels"]),
            "commitment_loss": tf.reduce_mean(details["commitment_losses"]),
        }
        total = (settings["l1_weight"] * terms["l1_loss"]
                 + settings["mel_weight"] * terms["mel_loss"]
                 + settings["commitment_weight"] * terms["commitment_loss"])
        if settings["stft_weight"] > 0:
            terms["stft_loss"] = codec_losses.multiscale_stft_loss(audio, reconstruction,
                                                                   settings["stft_windows"])
            total += settings["stft_weight"] * terms["stft_loss"]
        if settings["multiscale_waveform_weight"] > 0:
            terms["waveform_loss"] = codec_losses.downsampled_waveform_loss(
                padded, stages, self.codec.decoder.stage_factors, self.waveform_stage_weights)
            total += settings["multiscale_waveform_weight"] * terms["waveform_loss"]
        discriminator_loss = None
        if settings["adversarial"]:
            outputs = self.discriminator(tf.concat([audio, reconstruction], axis=0))
            real = [[tf.split(f, 2, axis=0)[0] for f in scale] for scale in outputs]
            fake = [[tf.split(f, 2, axis=0)[1] for f in scale] for scale in outputs]
            terms["adversarial_loss"] = codec_losses.generator_hinge_loss(
                [scale[-1] for scale in fake])
            terms["feature_loss"] = codec_losses.feature_matching_loss(
                [scale[:-1] for scale in real], [scale[:-1] for scale in fake])
            discriminator_loss = codec_losses.discriminator_hinge_loss(
                [scale[-1] for scale in real], [scale[-1] for scale in fake])
            total += (settings["adversarial_weight"] * terms["adversarial_loss"]
                      + settings["feature_weight"] * terms["feature_loss"])
        return Objective(total, terms, discriminator_loss, reconstruction, details)

    def _update_metrics(self, audio, total, terms, discriminator_loss, reconstruction,
                        details):
        self.trackers["loss"].update_state(total)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        if discriminator_loss is not None:
            self.trackers["discriminator_loss"].update_state(discriminator_loss)
        for i in range(self.codec.num_quantizers):
            self.trackers[f"perplexity_{i + 1}"].update_state(details["perplexities"][i])
        self.trackers["si_sdr"].update_state(
            tf.reduce_mean(codec_metrics.si_sdr_db(audio, reconstruction)))
        return {m.name: m.result() for m in self.metrics}

    # ----- steps -------------------------------------------------------------------------
    def _build_optimizer(self):
        """Create the optimizer's variables over all trainable variables (as Keras does when
        it restores a compiled model); the step then updates the codec's only."""
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def make_train_function(self, force=False):
        # Variables created before tracing: the step is traced once instead of twice.
        self._build_optimizer()
        return super().make_train_function(force)

    def train_step(self, data):
        audio = self._audio(data)
        self._build_optimizer()
        adversarial = self.settings["adversarial"]
        codec_variables = self.codec.trainable_variables
        with tf.GradientTape() as tape, tf.GradientTape() as discriminator_tape:
            objective = self.objective(audio, training=True)
            # Scaled by a LossScaleOptimizer's loss scale (mixed_float16), which its ``apply``
            # divides out again.
            scaled = replica_share(self.optimizer.scale_loss(objective.total)
                                   if hasattr(self.optimizer, "scale_loss") else objective.total)
            discriminator_share = (replica_share(objective.discriminator_loss) if adversarial
                                   else None)
        self.optimizer.apply(tape.gradient(scaled, codec_variables), codec_variables)
        if adversarial:
            variables = self.discriminator.trainable_variables
            self.discriminator_optimizer.apply(
                discriminator_tape.gradient(discriminator_share, variables), variables)
        return self._update_metrics(audio, *objective)

    def test_step(self, data):
        audio = self._audio(data)
        return self._update_metrics(audio, *self.objective(audio, training=False))

    def get_config(self):
        return {"codec": keras.saving.serialize_keras_object(self.codec), **self.settings}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        codec = keras.saving.deserialize_keras_object(config.pop("codec"))
        return cls(codec, **config)

"""A tiny autoregressive model for the tests of the training loop and the command line.

``ToyAR`` (family ``"toy_ar"``) predicts each quantized sample from the ``kernel_size``
previous ones with one causal convolution over their one-hot codes. It keeps the whole
``AudioModel`` contract (windows data, masked cross-entropy in nats, bits per sample, a
compiled generation loop) at a size that trains in a fraction of a second. It is imported
only by tests (and by subprocesses through ``SAMPLENET_EXTRA_FAMILIES``), so users never see
it in the registry.
"""
import keras
import numpy as np
import tensorflow as tf

from samplenet import quantization as quant
from samplenet.models import sampler
from samplenet.models.base import CategoricalAutoregressive
from samplenet.models.figures import FamilyFigures, measured_span
from samplenet.models.registry import register_family
from samplenet.ops.losses import masked_accuracy, masked_cross_entropy


@keras.saving.register_keras_serializable(package="samplenet")
@register_family("toy_ar")
class ToyAR(CategoricalAutoregressive):
    """One causal convolution over one-hot codes.

    Args:
      q_levels: number of quantization levels.
      quantization: ``"linear"``, ``"mu-law"`` or ``"a-law"``.
      kernel_size: samples seen per prediction (the receptive field).
      target_len: target samples per training window.
      sample_rate: Hz.
      nan_at_step: if > 0, the loss of optimizer step ``nan_at_step`` (1-based) and of every
        later step is NaN, to test the divergence guard; 0 = never.
    """

    data_kind = "windows"

    def __init__(self, q_levels=8, quantization="linear", kernel_size=4, target_len=32,
                 sample_rate=4000, nan_at_step=0, **kwargs):
        super().__init__(**kwargs)
        quant.check_quantization(q_levels, quantization)
        for name, value in (("kernel_size", kernel_size), ("target_len", target_len),
                            ("sample_rate", sample_rate)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.q_levels = q_levels
        self.quantization = quantization
        self.kernel_size = kernel_size
        self.target_len = target_len
        self.sample_rate = sample_rate
        self.nan_at_step = nan_at_step

    @property
    def receptive_field(self):
        """Samples each prediction depends on."""
        return self.kernel_size

    def build(self, input_shape=None):
        self.kernel = self.add_weight(name="kernel",
                                      shape=(self.kernel_size, self.q_levels, self.q_levels),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.q_levels,), initializer="zeros")
        self.built = True

    def data_options(self):
        return {"context": self.kernel_size, "target_len": self.target_len,
                "q_levels": self.q_levels, "quantization": self.quantization}

    def example_batch(self, batch_size=1):
        total = self.kernel_size + self.target_len
        return {"samples": np.zeros((batch_size, total), np.int32),
                "audio": np.zeros((batch_size, total), np.float32),
                "mask": np.ones((batch_size, self.target_len), np.float32)}

    def _logits(self, history):
        """``history`` int32 ``(batch, time)`` (or one-hot float ``(batch, time, q)``) ->
        logits ``(batch, time - kernel_size + 1, q)``: output ``i`` predicts the sample after
        ``history[:, i + kernel_size - 1]``."""
        one_hot = (tf.one_hot(history, self.q_levels, dtype=self.compute_dtype)
                   if history.dtype.is_integer else tf.cast(history, self.compute_dtype))
        kernel = tf.cast(self.kernel, self.compute_dtype)
        return tf.nn.conv1d(one_hot, kernel, stride=1, padding="VALID") + tf.cast(
            self.bias, self.compute_dtype)

    def call(self, inputs):
        """``inputs["samples"]`` int32 ``(batch, kernel_size + target_len)`` -> logits
        ``(batch, target_len, q_levels)`` for ``samples[:, kernel_size:]``."""
        return self._logits(inputs["samples"][:, :-1])

    def loss_and_accuracy(self, data, training):
        if isinstance(data, (tuple, list)):
            data = data[0]
        logits = self(data, training=training)
        targets = data["samples"][:, self.kernel_size:]
        loss, weight = masked_cross_entropy(targets, logits, data["mask"])
        accuracy, _ = masked_accuracy(targets, logits, data["mask"])
        if self.nan_at_step > 0 and training:
            step = tf.cast(self.optimizer.iterations + 1, tf.float32)
            loss = loss * tf.where(step >= self.nan_at_step, np.float32(np.nan), 1.0)
        return loss, weight, accuracy

    def get_config(self):
        config = super().get_config()
        config.update(q_levels=self.q_levels, quantization=self.quantization,
                      kernel_size=self.kernel_size, target_len=self.target_len,
                      sample_rate=self.sample_rate, nan_at_step=self.nan_at_step)
        return config

    def figures(self):
        """``FamilyFigures``: one convolution over one-hot codes."""
        macs = self.kernel_size * self.q_levels * self.q_levels
        return FamilyFigures(
            depth=1, depth_rule="one causal convolution", receptive_field=self.kernel_size,
            frame_context=None,
            flops_per_sample={"generation": 2.0 * macs, "training": 6.0 * macs},
            activation_floats=2 * self.q_levels,
            default_seq_len=self.kernel_size + self.target_len,
            measure=lambda: measured_span(self._logits, self.kernel_size, position=0,
                                          channels=self.q_levels),
            notes=())

    # State: the last ``kernel_size`` codes ``(batch, kernel_size)``.
    generation_jit = False

    def start_generation(self, batch_size, prime, labels, num_samples=None):
        silence = quant.silence_code(self.q_levels, self.quantization)
        if prime is None:
            return sampler.Start(tf.fill([batch_size, self.kernel_size], silence))
        history = np.full((batch_size, self.kernel_size), silence, np.int32)
        codes = quant.encode(prime, self.q_levels, self.quantization)[:, -self.kernel_size:]
        history[:, self.kernel_size - codes.shape[1]:] = codes
        return sampler.Start(tf.constant(history))

    def predict_next(self, window, context, chunk_inputs, step, index):
        return self._logits(window)[:, -1, :], window

    def append(self, window, value):
        return tf.concat([window[:, 1:], value[:, None]], axis=1)


# Twelve quarter-second plucked-string items at the toy model's 4 kHz: a few train, valid and
# test files each with valid_fraction = test_fraction = 0.3.
TOY_DATA = "builtin:plucked?num_items=12&item_seconds=0.25"


def toy_config(model=None, data=None, **train):
    """A config for a few-second training run of ``ToyAR``: ``model`` constructor arguments,
    ``data`` and ``train`` section entries override the tiny defaults."""
    return {"family": "toy_ar", **(model or {}),
            "data": {"spec": TOY_DATA, "valid_fraction": 0.3, "test_fraction": 0.3,
                     **(data or {})},
            "train": {"batch_size": 4, "epochs": 1, "steps_per_epoch": 2, "validation_steps": 1,
                      "early_stopping_patience": 0, **train}}

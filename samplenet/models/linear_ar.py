"""A linear autoregressive model: ``x_t = c + sum_k w_k x_{t-k} + noise``, fitted by least
squares (MSE) on real-valued audio. A sanity baseline: on an AR(p) series it must recover the
coefficients."""
import keras
import numpy as np
import tensorflow as tf

from samplenet import quantization as quant
from samplenet.layers.causal_conv1d import CausalConv1D
from samplenet.models import sampler
from samplenet.models.figures import (BACKWARD_FACTOR, FamilyFigures, SuggestedStructure,
                                      measured_span, milliseconds)
from samplenet.models.base import Autoregressive, replica_share
from samplenet.models.registry import register_family
from samplenet.validation import check_positive_int

_VARIANCE_DECAY = 0.9  # EMA of the training residual variance (debiased)


@keras.saving.register_keras_serializable(package="samplenet")
@register_family("linear_ar")
class LinearAR(Autoregressive):
    """One causal convolution of ``order`` taps plus a bias over past samples.

    Args:
      order: number of past samples (lags) used.
      q_levels, quantization: the levels of the ``codes`` that ``generate`` returns (and of the
        pipeline's ``samples``, which the model does not use).
      sample_rate: Hz.
      target_len: target samples per training window.

    ``call(inputs)``: ``inputs["audio"]`` float32 ``(batch, time)`` -> predictions ``(batch,
    time)``; ``predictions[:, t]`` estimates ``audio[:, t + 1]``. The training residual
    variance is tracked (an EMA) and used as the noise level of ``generate``.
    """

    data_kind = "windows"

    def __init__(self, order=2, q_levels=256, quantization="linear", sample_rate=16000,
                 target_len=1000, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("order", order)
        quant.check_quantization(q_levels, quantization)
        check_positive_int("sample_rate", sample_rate)
        check_positive_int("target_len", target_len)
        self.order = order
        self.q_levels = q_levels
        self.quantization = quantization
        self.sample_rate = sample_rate
        self.target_len = target_len
        self.predictor = CausalConv1D(1, order, name="predictor")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def receptive_field(self):
        """Past samples one prediction depends on."""
        return self.order

    def build(self, input_shape=None):
        self.predictor.build((None, None, 1))
        self.residual_ema = self.add_weight(name="residual_ema", shape=(), initializer="zeros",
                                            trainable=False, aggregation="mean")
        self.residual_updates = self.add_weight(name="residual_updates", shape=(),
                                                initializer="zeros", trainable=False,
                                                aggregation="mean")
        self.built = True

    def data_options(self):
        return {"context": self.order, "target_len": self.target_len, "q_levels": self.q_levels,
                "quantization": self.quantization, "with_labels": False,
                "local_condition": None}

    def example_batch(self, batch_size=1):
        total = self.order + self.target_len
        return {"samples": np.full((batch_size, total),
                                   quant.silence_code(self.q_levels, self.quantization),
                                   np.int32),
                "audio": np.zeros((batch_size, total), np.float32),
                "mask": np.ones((batch_size, self.target_len), np.float32)}

    def call(self, inputs, training=None):
        audio = tf.cast(inputs["audio"], self.compute_dtype)
        return self.predictor(audio[..., None])[..., 0]

    def coefficients(self):
        """``(lags, intercept)``: ``lags[k - 1]`` multiplies ``x_{t-k}`` (NumPy float64
        ``(order,)``) and ``intercept`` is ``c`` (float)."""
        self.ensure_built()
        kernel = self.predictor.kernel.numpy()[:, 0, 0].astype(np.float64)
        return kernel[::-1].copy(), float(self.predictor.bias.numpy()[0])

    @property
    def noise_std(self):
        """The residual standard deviation seen in training (0 before any training step)."""
        updates = float(self.residual_updates.numpy())
        if updates == 0:
            return 0.0
        return float(np.sqrt(self.residual_ema.numpy() / (1.0 - _VARIANCE_DECAY ** updates)))

    # ----------------------------------------------------------------------------- training
    def _mse(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        audio, mask = data["audio"], tf.cast(data["mask"], tf.float32)
        target_len = tf.shape(mask)[1]
        predictions = tf.cast(self(data)[:, -target_len - 1:-1], tf.float32)
        errors = tf.square(predictions - tf.cast(audio[:, -target_len:], tf.float32)) * mask
        weight = tf.reduce_sum(mask)
        return tf.math.divide_no_nan(tf.reduce_sum(errors), weight), weight

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, weight = self._mse(data)
            share = replica_share(self.optimizer.scale_loss(loss))  # mixed_float16
        grads = tape.gradient(share, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.residual_ema.assign(_VARIANCE_DECAY * self.residual_ema
                                 + (1.0 - _VARIANCE_DECAY) * loss)
        self.residual_updates.assign_add(1.0)
        self.loss_tracker.update_state(loss, sample_weight=weight)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        loss, weight = self._mse(data)
        self.loss_tracker.update_state(loss, sample_weight=weight)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def get_config(self):
        config = super().get_config()
        config.update(order=self.order, q_levels=self.q_levels, quantization=self.quantization,
                      sample_rate=self.sample_rate, target_len=self.target_len)
        return config

    def figures(self):
        """``FamilyFigures`` of this self (see ``samplenet.models.figures``)."""
        target_len = self.target_len
        length = self.order + 8
        return FamilyFigures(
            depth=1, depth_rule="one linear predictor", receptive_field=self.receptive_field,
            frame_context=None,
            flops_per_sample={"generation": 2.0 * self.order,
                              "training": 2.0 * BACKWARD_FACTOR * self.order
                              * (self.order + target_len) / target_len},
            activation_floats=3, default_seq_len=self.order + target_len,
            measure=lambda: measured_span(lambda x: self({"audio": x}), length),
            notes=())

    # ----------------------------------------------------------------------- suggestion
    default_preset = "linear_ar"

    @classmethod
    def span_to_cover(cls, correlation, lag, correlation_limited):
        """A linear predictor needs only the lag holding 90 % of the predictable structure."""
        return max(lag, 1), ", the lag holding 90 % of the predictable structure"

    @classmethod
    def suggest_structure(cls, base, span, report):
        """``order`` = ``span`` (the 90 % prediction lag)."""
        order, rate = max(1, span), base["sample_rate"]
        gains = report.prediction_gains_db
        reason = (f"order {order}: a linear predictor over the last {order} samples "
                  f"({milliseconds(order, rate)})")
        if gains.size:
            reason += (f" gains {gains[min(order, gains.size) - 1]:.1f} dB of the "
                       f"{gains[-1]:.1f} dB at order {gains.size}")
        return SuggestedStructure({"order": order}, order, [reason])

    # ------------------------------------------- one step of the shared sampler's loop
    # State: the last ``order`` samples ``(batch, order)`` float32, oldest first.
    value_dtype = tf.float32

    def start_generation(self, batch_size, prime, labels, num_samples=None):
        """The last ``order`` samples of ``prime`` (silence before it); context: the noise
        level of the training residual."""
        if prime is None:
            history = tf.zeros([batch_size, self.order], tf.float32)
        else:
            history = np.zeros((batch_size, self.order), np.float32)
            tail = prime[:, -self.order:]
            history[:, self.order - tail.shape[1]:] = tail
        with tf.init_scope():  # read once, also where this is traced (export)
            noise_std = np.float32(self.noise_std)
        return sampler.Start(tf.convert_to_tensor(history), tf.constant(noise_std))

    def loop_context(self, noise_std):
        return self.predictor.kernel[:, 0, 0], self.predictor.bias[0], noise_std

    def predict_next(self, history, context, chunk_inputs, step, index):
        """``(mean (batch,), noise std)`` of the next sample."""
        lags, bias, noise_std = context
        return (tf.linalg.matvec(history, lags) + bias, noise_std), history

    def draw(self, prediction, temperature, seed):
        """The mean plus Gaussian noise of the residual std times ``temperature``, in
        [-1, 1]."""
        mean, noise_std = prediction
        noise_scale = temperature * noise_std
        noise = tf.random.stateless_normal(tf.shape(noise_scale), seed)
        return tf.clip_by_value(mean + noise_scale * noise, -1.0, 1.0)

    def append(self, history, value):
        return tf.concat([history[:, 1:], value[:, None]], axis=1)

    def codes_and_audio(self, values):
        return quant.encode(values, self.q_levels, self.quantization), values

"""A linear autoregressive model: ``x_t = c + sum_k w_k x_{t-k} + noise``, fitted by least
squares (MSE) on real-valued audio. A sanity baseline: on an AR(p) series it must recover the
coefficients."""
import keras
import numpy as np
import tensorflow as tf

from samplenet import quantization as quant
from samplenet.layers.causal_conv1d import CausalConv1D
from samplenet.models.base import AudioModel, replica_share
from samplenet.models.registry import register_family
from samplenet.ops.sampling import (check_condition, check_prime, check_temperature, make_seed,
                                    step_seed)
from samplenet.validation import check_positive_int

_VARIANCE_DECAY = 0.9  # EMA of the training residual variance (debiased)



@keras.saving.register_keras_serializable(package="samplenet")
@register_family("linear_ar")
class LinearAR(AudioModel):
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
    kind = "autoregressive"

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

    # ---------------------------------------------------------------------------- generation
    @tf.function(jit_compile=True)
    def _generate_loop(self, history, noise_scale, seed, sample_index, num_steps):
        """Run the recursion ``num_steps`` times after ``history`` (float32 ``(batch,
        order)``, oldest first). Returns ``(audio (batch, num_steps), new history)``."""
        lags = self.predictor.kernel[:, 0, 0]
        bias = self.predictor.bias[0]
        outputs = tf.TensorArray(tf.float32, size=num_steps)

        def body(k, history, outputs):
            noise = tf.random.stateless_normal(tf.shape(noise_scale),
                                               step_seed(seed, sample_index + k))
            sample = tf.linalg.matvec(history, lags) + bias + noise_scale * noise
            sample = tf.clip_by_value(sample, -1.0, 1.0)
            history = tf.concat([history[:, 1:], sample[:, None]], axis=1)
            return k + 1, history, outputs.write(k, sample)

        _, history, outputs = tf.while_loop(lambda k, *_: k < num_steps, body,
                                            (tf.constant(0), history, outputs))
        return tf.transpose(outputs.stack()), history

    def generate_chunks(self, num_samples, batch_size=1, temperature=1.0, seed=None,
                        prime=None, condition=None, chunk_samples=16000):
        """Yield ``(codes, audio)`` chunks by the AR recursion with Gaussian noise of the
        training residual std times ``temperature`` (scalar or per sequence, > 0). ``prime``
        supplies the first past samples (silence before it); ``condition`` must be None."""
        for name, value in (("num_samples", num_samples), ("batch_size", batch_size),
                            ("chunk_samples", chunk_samples)):
            check_positive_int(name, value)
        temperature = check_temperature(temperature, batch_size)
        check_condition(condition, batch_size, 0)
        prime = check_prime(prime, batch_size)
        history = np.zeros((batch_size, self.order), np.float32)
        if prime is not None:
            tail = prime[:, -self.order:]
            history[:, self.order - tail.shape[1]:] = tail
        self.ensure_built()
        noise_scale = temperature * np.float32(self.noise_std)
        return self._chunks(num_samples, tf.constant(history), tf.constant(noise_scale),
                            tf.constant(make_seed(seed)), chunk_samples)

    def _chunks(self, num_samples, history, noise_scale, seed, chunk_samples):
        produced = 0
        while produced < num_samples:
            count = min(chunk_samples, num_samples - produced)
            audio, history = self._generate_loop(history, noise_scale, seed,
                                                 tf.constant(produced), count)
            audio = audio.numpy()
            yield quant.encode(audio, self.q_levels, self.quantization), audio
            produced += count

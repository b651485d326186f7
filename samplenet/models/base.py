"""What every samplenet model shares: its family name, the kind of training data it eats, how
to build its weights without data, and the chunked generation entry point.

A model class is a subclassed ``keras.Model`` decorated with
``@keras.saving.register_keras_serializable(package="samplenet")`` and
``@registry.register_family("NAME")``. It sets the class attribute ``data_kind``, implements
``train_step``/``test_step``, ``example_batch`` and (autoregressive models)
``generate_chunks``. ``get_config()`` returns exactly its constructor arguments, so
``cls(**model.get_config())`` rebuilds it.
"""
import keras
import numpy as np
import tensorflow as tf

from samplenet.ops.losses import nats_to_bits

DATA_KINDS = frozenset({"tbptt", "windows", "segments"})



def replica_share(loss):
    """This replica's share of the global batch's mean ``loss``, to differentiate: under
    tf.distribute the optimizer sums the replicas' gradients (one replica: ``loss`` itself)."""
    return loss / tf.distribute.get_strategy().num_replicas_in_sync

class AudioModel(keras.Model):
    """Base of the samplenet models.

    Class attributes:
      family: the registry name (``"samplernn"``, ``"wavenet"``, ...), set by
        ``registry.register_family`` and written to ``config.json``.
      data_kind: which pipeline of ``samplenet.data.pipelines`` feeds it: ``"tbptt"`` (truncated
        BPTT streams), ``"windows"`` (random windows with receptive-field context) or
        ``"segments"`` (fixed segments for the codec).
      kind: what the model does, for the code outside ``models/``: ``"autoregressive"``
        (generates audio sample by sample: ``generate``) or ``"codec"`` (``encode`` /
        ``decode`` and their streaming forms).
    Instance attributes every model has: ``sample_rate`` (Hz).
    """

    family = None
    data_kind = None
    kind = None

    def data_options(self):
        """Keyword arguments this model passes to its pipeline (``seq_len``, ``overlap``,
        ``q_levels``, ...); merged with the config's ``data`` section by
        ``samplenet.data.pipelines.training_dataset``."""
        return {}

    def training_callbacks(self):
        """Keras callbacks this model needs during ``fit`` (e.g. a loss-weight curriculum);
        the trainer adds them to its own."""
        return []

    def example_batch(self, batch_size=1):
        """A batch shaped like the pipeline's elements (dict of NumPy arrays), used to create
        the weights without data; ``model(example_batch())`` must run."""
        raise NotImplementedError

    def ensure_built(self):
        """Create every weight by calling the model once on ``example_batch()``; idempotent."""
        if not self.built or not self.weights:
            self(self.example_batch())
        return self

    def generate_chunks(self, num_samples, batch_size=1, temperature=1.0, seed=None,
                        prime=None, condition=None, chunk_samples=16000, **kwargs):
        """Yield ``(codes, audio)`` chunks (NumPy int32 / float32, ``(batch, <=chunk_samples)``)
        until ``num_samples`` samples per sequence are produced. Autoregressive models
        implement it with one compiled loop per chunk."""
        raise NotImplementedError(f"{type(self).__name__} does not generate audio")

    def preview_arguments(self):
        """Keyword arguments of ``generate`` for an unattended preview (the samples written
        during training), or None when the model cannot generate without inputs only a user
        can give. Generating models return ``{}`` unless they need more."""
        generates = type(self).generate_chunks is not AudioModel.generate_chunks
        return {} if generates else None

    def generate(self, num_samples, batch_size=1, temperature=1.0, seed=None, prime=None,
                 condition=None, **kwargs):
        """Generate ``num_samples`` samples per sequence.

        Returns ``(codes, audio)``: int32 ``(batch, num_samples)`` levels and float32
        ``(batch, num_samples)`` audio in [-1, 1]. Arguments as in ``generate_chunks``.
        """
        chunks = list(self.generate_chunks(num_samples, batch_size=batch_size,
                                           temperature=temperature, seed=seed, prime=prime,
                                           condition=condition, **kwargs))
        codes = np.concatenate([c for c, _ in chunks], axis=1)
        audio = np.concatenate([a for _, a in chunks], axis=1)
        return codes, audio


class CategoricalAutoregressive(AudioModel):
    """An autoregressive model with a softmax over quantized levels.

    Optimises cross-entropy in nats and reports ``loss`` (nats), ``bits_per_sample`` and
    ``accuracy`` (next-level arg-max), each averaged over the counted (unmasked) targets.
    Subclasses implement ``loss_and_accuracy(data, training)`` returning
    ``(loss, weight, accuracy)`` (see ``samplenet.ops.losses``); the default steps train on
    it. A subclass with more to do per step (SampleRNN's carried state) overrides the steps and
    calls ``update_metrics``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_sample")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.bits_tracker, self.accuracy_tracker]

    def loss_and_accuracy(self, data, training):
        """``(mean cross-entropy in nats, number of counted targets, accuracy)`` of a batch."""
        raise NotImplementedError

    def preview_arguments(self):
        """Class 0 for class-conditioned models; None for locally conditioned ones (a preview
        has no feature sequence to follow)."""
        if getattr(self, "local_condition_channels", 0):
            return None
        return {"condition": 0} if getattr(self, "num_classes", 0) else {}

    def update_metrics(self, loss, weight, accuracy):
        """Accumulate one batch's figures (weighted by its target count); returns the logs."""
        self.loss_tracker.update_state(loss, sample_weight=weight)
        self.bits_tracker.update_state(nats_to_bits(loss), sample_weight=weight)
        self.accuracy_tracker.update_state(accuracy, sample_weight=weight)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, weight, accuracy = self.loss_and_accuracy(data, training=True)
            # Scaled by a LossScaleOptimizer's loss scale (mixed_float16), which its ``apply``
            # divides out again; other optimizers return the loss as it is.
            share = replica_share(self.optimizer.scale_loss(loss))
        gradients = tape.gradient(share, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self.update_metrics(loss, weight, accuracy)

    def test_step(self, data):
        return self.update_metrics(*self.loss_and_accuracy(data, training=False))

"""What every samplenet model shares: its family name, the kind of training data it eats, how
to build its weights without data, and the chunked generation entry point.

A model class is a subclassed ``keras.Model`` decorated with
``@keras.saving.register_keras_serializable(package="samplenet")`` and
``@registry.register_family("NAME")``. It sets the class attribute ``data_kind``, implements
``train_step``/``test_step`` and ``example_batch``; an autoregressive family subclasses
``Autoregressive`` and supplies one step of the shared sampler's loop. ``get_config()``
returns exactly its constructor arguments, so ``cls(**model.get_config())`` rebuilds it.
"""
import contextlib

import keras
import numpy as np
import tensorflow as tf

from samplenet import quantization as quant
from samplenet.models import sampler
from samplenet.ops import sampling
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

    # What ``analysis.suggest`` asks a family that can be suggested for a dataset (default:
    # it cannot).
    default_preset = None        # the preset a suggestion starts from
    training_length_key = None   # the config key of the training sequence length, if any
    suggests_quantization = False  # whether the quantization is chosen from the data

    @classmethod
    def suggest_structure(cls, base, span, report):
        """``figures.SuggestedStructure`` covering ``span`` samples (at
        ``base["sample_rate"]``) for a dataset ``report``, starting from the resolved preset
        config ``base``; None when the family takes no suggestion."""
        return None

    @classmethod
    def span_to_cover(cls, correlation, lag, correlation_limited):
        """``(samples the model should span, how: the words that follow it in a reason)``
        from the dataset's correlation length and 90 % prediction lag (samples);
        ``correlation_limited``: the correlation length is bounded by the analysed excerpt."""
        return max(correlation, lag, 1), (
            f" = max(correlation length {correlation}, 90 % prediction lag {lag})"
            + (" (the correlation length is limited by the analysed excerpt)"
               if correlation_limited else ""))

    @classmethod
    def training_length_step(cls, config):
        """The training length (``training_length_key``) must be a multiple of this."""
        return 1

    def covered_samples(self):
        """Samples of the past one prediction sees at once: the receptive field."""
        return self.receptive_field

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

    def preview_arguments(self):
        """Keyword arguments of ``generate`` for an unattended preview (the samples written
        during training), or None when the model does not generate or cannot without inputs
        only a user can give."""
        return None


class Autoregressive(AudioModel):
    """A model that generates audio one sample at a time, through the shared sampler
    (``samplenet.models.sampler``), which owns argument checks, priming, the compiled loop,
    chunking, seeds, temperature and streaming. A family supplies one step of the loop:

    - ``start_generation(batch_size, prime, labels, num_samples, **options)`` -> a
      ``sampler.Start``: the state after ``prime`` (checked float32 audio ``(batch_size, n)``
      or None for silence), with ``labels`` (checked int32 class ids ``(batch_size,)`` or
      None). With ``prime`` None and no options it must be traceable with a tensor
      ``batch_size`` (export);
    - ``predict_next(state, context, chunk_inputs, step, index)`` -> ``(prediction, state)``:
      the prediction of the sample at ``index`` (samples since the start of generation;
      ``step`` counts within the chunk), e.g. logits ``(batch, q_levels)``;
    - ``append(state, value)`` -> the state with ``value`` ``(batch,)`` as the latest sample;
    - optionally ``loop_context`` (computed once inside the traced loop from
      ``Start.context``), ``draw`` (default: a categorical sample of logits),
      ``generation_scope``, and the class attributes below.

    Class attributes: ``value_dtype`` (int32 levels, or float32 audio), ``generation_jit``
    (compile the loop with XLA), ``chunk_granularity`` (chunks are whole multiples of it),
    ``num_classes`` (0: not class-conditioned).
    """

    kind = "autoregressive"
    value_dtype = tf.int32
    generation_jit = True
    chunk_granularity = 1
    num_classes = 0
    _generation_loop = None

    def generation_loop(self):
        """The shared sampler's loop for this model, traced once (``sampler.compile_loop``)."""
        if self._generation_loop is None:
            self._generation_loop = sampler.compile_loop(self)
        return self._generation_loop

    @property
    def needs_step_inputs(self):
        """Whether generation needs inputs for every step that only a user can give (local
        conditioning features): such a model has no preview and no exported signature."""
        return False

    def preview_arguments(self):
        """Class 0 for class-conditioned models; None when ``needs_step_inputs``."""
        if self.needs_step_inputs:
            return None
        return {"condition": 0} if self.num_classes else {}

    def start_generation(self, batch_size, prime, labels, num_samples, **options):
        raise NotImplementedError

    def loop_context(self, context):
        """What the loop needs from ``Start.context``, computed once inside the traced loop."""
        return context

    def predict_next(self, state, context, chunk_inputs, step, index):
        raise NotImplementedError

    def draw(self, prediction, temperature, seed):
        """The next level from logits ``(batch, q_levels)`` at ``temperature`` ``(batch,)``
        with the ``(2,)`` seed of this step."""
        return sampling.sample_logits(prediction, temperature, seed)

    def append(self, state, value):
        raise NotImplementedError

    def generation_scope(self):
        """A context manager entered around the traced loop (default: nothing)."""
        return contextlib.nullcontext()

    def codes_and_audio(self, values):
        """NumPy loop values ``(batch, n)`` -> ``(codes int32, audio float32)``."""
        return values, quant.decode(values, self.q_levels, self.quantization)

    def generate_chunks(self, num_samples, batch_size=1, temperature=1.0, seed=None,
                        prime=None, condition=None, chunk_samples=16000, **options):
        """Yield ``(codes, audio)`` chunks (NumPy int32 / float32, ``(batch, <=chunk)``) until
        ``num_samples`` samples per sequence are produced, one compiled loop per chunk. See
        ``sampler.generate_chunks`` for the arguments."""
        return sampler.generate_chunks(self, num_samples, batch_size=batch_size,
                                       temperature=temperature, seed=seed, prime=prime,
                                       condition=condition, chunk_samples=chunk_samples,
                                       **options)

    def generate(self, num_samples, batch_size=1, temperature=1.0, seed=None, prime=None,
                 condition=None, **options):
        """Generate ``num_samples`` samples per sequence.

        Returns ``(codes, audio)``: int32 ``(batch, num_samples)`` levels and float32
        ``(batch, num_samples)`` audio in [-1, 1]. Arguments as in ``generate_chunks``.
        """
        chunks = list(self.generate_chunks(num_samples, batch_size=batch_size,
                                           temperature=temperature, seed=seed, prime=prime,
                                           condition=condition, **options))
        codes = np.concatenate([c for c, _ in chunks], axis=1)
        audio = np.concatenate([a for _, a in chunks], axis=1)
        return codes, audio


class CategoricalAutoregressive(Autoregressive):
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

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

DATA_KINDS = frozenset({"tbptt", "windows", "segments"})


class AudioModel(keras.Model):
    """Base of the samplenet models.

    Class attributes:
      family: the registry name (``"samplernn"``, ``"wavenet"``, ...), set by
        ``registry.register_family`` and written to ``config.json``.
      data_kind: which pipeline of ``samplenet.data.pipelines`` feeds it: ``"tbptt"`` (truncated
        BPTT streams), ``"windows"`` (random windows with receptive-field context) or
        ``"segments"`` (fixed segments for the codec).
    Instance attributes every model has: ``sample_rate`` (Hz).
    """

    family = None
    data_kind = None

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

"""What every samplenet model shares: its family name, the kind of training data it eats, and
the keys of its configuration.

A model class is a subclassed ``keras.Model`` decorated with
``@keras.saving.register_keras_serializable(package="samplenet")`` and
``@registry.register_family("NAME")``. It sets the class attributes below and implements
``train_step``/``test_step`` itself. ``get_config()`` returns exactly its constructor
arguments, so ``cls(**model.get_config())`` rebuilds it.
"""
import keras

DATA_KINDS = frozenset({"tbptt", "windows", "segments"})


class AudioModel(keras.Model):
    """Base of the samplenet models.

    Class attributes set by each family:
      family: the registry name (``"samplernn"``, ``"wavenet"``, ...), written to ``config.json``.
      data_kind: which pipeline of ``samplenet.data.pipelines`` feeds it: ``"tbptt"`` (truncated
        BPTT streams), ``"windows"`` (random windows with receptive-field context) or
        ``"segments"`` (fixed segments for the codec).
    Instance attributes every model has: ``sample_rate`` (Hz).
    """

    family = None
    data_kind = None

    def data_options(self):
        """Keyword arguments this model passes to its pipeline (``seq_len``, ``overlap``, ...).

        Returns a dict; the pipeline named by ``data_kind`` receives it together with the
        ``data`` section of the config.
        """
        return {}

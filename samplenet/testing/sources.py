"""An in-memory source for tests: arrays in, the Source contract out."""
import numpy as np

from samplenet.data.sources import Example, Source


class ArraySource(Source):
    """A ``Source`` over given float arrays (one example each).

    Args:
      arrays: list of 1-D float arrays in [-1, 1].
      sample_rate: Hz.
      splits: one of "train"/"valid"/"test" per array (default: all "train").
      labels: class index per array (with ``class_names``), or None.
      class_names: names of the classes.
      name: the source's spec-like name.
    """

    def __init__(self, arrays, sample_rate=16000, splits=None, labels=None, class_names=(),
                 name="arrays"):
        self._arrays = [np.asarray(a, np.float32) for a in arrays]
        labels = [-1] * len(arrays) if labels is None else list(labels)
        examples = [Example(f"{i:04d}", label) for i, label in enumerate(labels)]
        super().__init__(name, sample_rate, examples, splits or ["train"] * len(arrays),
                         class_names=class_names)

    def load(self, example):
        return self._arrays[int(example.key)]

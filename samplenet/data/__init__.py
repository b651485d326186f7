"""Training data: sources (folders of audio files, built-in generators) and tf.data pipelines.

``from_spec(spec)`` makes a source from a ``--data`` spec; the pipeline functions
(``training_dataset`` and the three it dispatches to, and ``pipeline_options``) live in
``samplenet.data.pipelines`` and are imported on first use.
"""
import importlib

from samplenet.data.sources import SPLITS, Example, Source, from_spec

_PIPELINE_FUNCTIONS = frozenset(
    {"tbptt_dataset", "windows_dataset", "segments_dataset", "training_dataset",
     "pipeline_options"})

__all__ = ["SPLITS", "Example", "Source", "from_spec", *sorted(_PIPELINE_FUNCTIONS)]


def __getattr__(name):
    if name in _PIPELINE_FUNCTIONS:
        return getattr(importlib.import_module("samplenet.data.pipelines"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _PIPELINE_FUNCTIONS)

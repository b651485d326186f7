"""Measure data and models, and suggest a configuration whose receptive field fits the data.

``analyze_dataset(source_or_spec)`` -> ``DatasetReport``; ``analyze_model(model_or_preset)``
-> ``ModelReport``; ``suggest_config(dataset_report, family)`` -> ``Suggestion``. Figures are
in ``samplenet.analysis.plots`` (matplotlib, imported on first use); the command line is
``python -m samplenet.analyze``. ``analyze_model`` and ``suggest_config`` import TensorFlow on
first use, so dataset analysis starts fast.
"""
import importlib

from samplenet.analysis.dataset import DatasetReport, analyze_dataset

_LAZY = {"analyze_model": "samplenet.analysis.model", "ModelReport": "samplenet.analysis.model",
         "suggest_config": "samplenet.analysis.suggest",
         "Suggestion": "samplenet.analysis.suggest"}

__all__ = ["DatasetReport", "analyze_dataset", *sorted(_LAZY)]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

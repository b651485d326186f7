"""samplenet: sample-level neural audio generation (SampleRNN, WaveNet, a linear AR model) and
a SoundStream-style codec, in TensorFlow 2 / Keras 3.

Public API: ``build_model(preset_or_family, **overrides)``, ``load_model(run_dir)``, and the
modules ``audio``, ``quantization``, ``data``, ``analysis``.
"""
import importlib
import os

# TensorFlow's default CPU allocator returns every freed tensor larger than glibc's mmap
# threshold (at most 32 MB) to the operating system, so each training step page-faults its large
# activations in again: the peers' SampleRNN at batch 32 took 1.5 M page faults and 6-10 s of
# kernel time per step (benchmarks/README.md, session 4). The BFC allocator keeps and reuses that
# memory. TensorFlow reads the variable when it creates its CPU device (at the first operation),
# so it takes effect when samplenet is imported before any TensorFlow operation runs;
# ``TF_CPU_ALLOCATOR_USE_BFC=false`` in the environment keeps TensorFlow's default.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
# TensorFlow's C++ INFO and WARNING lines (XLA service notes, device placement, start-up notes)
# are not for samplenet's users; ``TF_CPP_MIN_LOG_LEVEL=0`` in the environment shows them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from samplenet.tensorflow_start import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything else imports it: see samplenet.tensorflow_start

from samplenet.config import build_model, preset_names  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build_model", "load_model", "preset_names", "audio", "quantization", "data",
           "analysis"]

_LAZY_MODULES = {"audio", "quantization", "data", "analysis", "models", "layers", "training"}


def load_model(path):
    """Load a trained model from a run directory, a checkpoint folder in one, or a ``.keras``
    file (in Keras safe mode)."""
    from samplenet.loading import load_model as _load
    return _load(path)


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"samplenet.{name}")
    raise AttributeError(f"module 'samplenet' has no attribute {name!r}")

"""The contract every samplenet layer and model keeps: it builds, calls, rebuilds from its
config with the same output, and survives a ``.keras`` save/load in safe mode."""
import os
import tempfile

import keras
import numpy as np


def _as_numpy(outputs):
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    if isinstance(outputs, dict):
        return {k: np.asarray(v) for k, v in outputs.items()}
    return np.asarray(outputs)


def _assert_close(a, b, atol):
    if isinstance(a, list):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, atol=atol)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=atol)
    else:
        np.testing.assert_allclose(a, b, atol=atol)


def _assert_rebuilds(original, inputs, atol, call_kwargs):
    """``from_config`` plus the original's weights gives the same output and config; returns
    the original's output (NumPy)."""
    expected = _as_numpy(original(inputs, **call_kwargs))
    clone = original.__class__.from_config(original.get_config())
    clone(inputs, **call_kwargs)
    clone.set_weights(original.get_weights())
    _assert_close(expected, _as_numpy(clone(inputs, **call_kwargs)), atol)
    assert clone.get_config() == original.get_config()
    return expected


def _assert_keras_file_round_trip(model, inputs, expected, atol):
    """``model`` saved to ``.keras`` and loaded in safe mode gives ``expected``."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        _assert_close(expected, _as_numpy(loaded(inputs)), atol)


def assert_layer_contract(layer, inputs, atol=1e-5, call_kwargs=None):
    """Build and call ``layer`` on ``inputs``; check config and ``.keras`` round trips.

    The rebuilt layer gets the original's weights; both must give the same output. A layer
    called on one tensor without keyword arguments is then wrapped in a ``keras.Sequential``,
    saved to ``.keras`` and loaded with ``safe_mode=True``. Returns the output of the first
    call (NumPy).
    """
    call_kwargs = call_kwargs or {}
    expected = _assert_rebuilds(layer, inputs, atol, call_kwargs)
    if not call_kwargs and not isinstance(inputs, (list, tuple, dict)):
        holder = keras.Sequential([layer])
        holder(inputs)  # built before saving, so the file holds the weights
        _assert_keras_file_round_trip(holder, inputs, expected, atol)
    return expected


def assert_model_round_trip(model, inputs, atol=1e-5):
    """A subclassed samplenet model: ``from_config`` + weights, and ``.keras`` save/load in safe
    mode, reproduce ``model(inputs)``. Returns the output (NumPy)."""
    expected = _assert_rebuilds(model, inputs, atol, {})
    _assert_keras_file_round_trip(model, inputs, expected, atol)
    return expected

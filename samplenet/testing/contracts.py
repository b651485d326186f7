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


def assert_layer_contract(layer, inputs, atol=1e-5, call_kwargs=None):
    """Build and call ``layer`` on ``inputs``; check config and ``.keras`` round trips.

    The rebuilt layer gets the original's weights; both must give the same output. The layer is
    then wrapped in a functional model, saved to ``.keras`` and loaded with ``safe_mode=True``.
    Returns the output of the first call (NumPy).
    """
    call_kwargs = call_kwargs or {}
    expected = _as_numpy(layer(inputs, **call_kwargs))
    clone = layer.__class__.from_config(layer.get_config())
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    _assert_close(expected, _as_numpy(clone(inputs, **call_kwargs)), atol)
    assert clone.get_config() == layer.get_config()

    holder = keras.Sequential([layer]) if not call_kwargs else None
    if holder is not None and not isinstance(inputs, (list, tuple, dict)):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "layer.keras")
            holder.save(path)
            loaded = keras.models.load_model(path, safe_mode=True)
            _assert_close(expected, _as_numpy(loaded(inputs)), atol)
    return expected


def assert_model_round_trip(model, inputs, atol=1e-5):
    """A subclassed samplenet model: ``from_config`` + weights, and ``.keras`` save/load in safe
    mode, reproduce ``model(inputs)``. Returns the output (NumPy)."""
    expected = _as_numpy(model(inputs))
    clone = model.__class__.from_config(model.get_config())
    clone(inputs)
    clone.set_weights(model.get_weights())
    _assert_close(expected, _as_numpy(clone(inputs)), atol)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        _assert_close(expected, _as_numpy(loaded(inputs)), atol)
    return expected

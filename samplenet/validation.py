"""Argument checks shared by layers, models and ops: one message form everywhere."""
import numpy as np


def check_int(name, value, minimum):
    """Return ``value`` as an int if it is an integer >= ``minimum`` (Python or NumPy, not a
    bool); else ``ValueError`` naming ``name`` and the value received."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_bool(name, value):
    """``ValueError`` naming ``name`` and the value received unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def check_seconds(name, value, *, allow_zero=False):
    """``ValueError`` naming ``name`` and the value received unless ``value`` is a number of
    seconds > 0 (>= 0 with ``allow_zero``; not a bool)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.floating))
            or not (value >= 0 if allow_zero else value > 0)):
        raise ValueError(f"{name} must be a number of seconds {'>=' if allow_zero else '>'} 0, "
                         f"got {value!r}")


def check_positive_int(name, value):
    """``check_int(name, value, 1)``."""
    return check_int(name, value, 1)

"""Argument checks shared by layers, models and ops: one message form everywhere."""
import numpy as np


def check_positive_int(name, value):
    """Return ``value`` as an int if it is an integer >= 1 (Python or NumPy, not a bool); else
    ``ValueError`` naming ``name`` and the value received."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value

"""What TensorFlow will compute on, in words, for programs and benchmarks to print."""
import os

import tensorflow as tf


def gpu_names():
    """Names of the GPUs TensorFlow sees (``"NVIDIA H100 80GB HBM3"``, ...), in device order;
    empty when it sees none."""
    names = []
    for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", f"GPU {index}"))
    return names


def describe():
    """One line: the GPUs TensorFlow will use, else the CPU and its core count, e.g.
    ``"GPU: NVIDIA H100 80GB HBM3"`` or ``"CPU (2 cores; TensorFlow sees no GPU)"``."""
    names = gpu_names()
    if names:
        return f"GPU{'s' if len(names) > 1 else ''}: {', '.join(names)}"
    return f"CPU ({os.cpu_count()} cores; TensorFlow sees no GPU)"

"""samplenet.devices: the device line programs print."""
import os
from unittest import mock

import tensorflow as tf

from samplenet import devices


def test_describe_names_the_cpu_and_its_cores_without_a_gpu():
    with mock.patch.object(tf.config, "list_physical_devices", return_value=[]):
        assert devices.describe() == f"CPU ({os.cpu_count()} cores; TensorFlow sees no GPU)"


def test_describe_names_every_gpu_tensorflow_sees():
    gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]
    names = {gpus[0]: {"device_name": "NVIDIA H100"}, gpus[1]: {}}
    with mock.patch.object(tf.config, "list_physical_devices", return_value=gpus), \
            mock.patch.object(tf.config.experimental, "get_device_details", names.get):
        assert devices.describe() == "GPUs: NVIDIA H100, GPU 1"

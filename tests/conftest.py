"""Test set-up: quiet TensorFlow, two threads (the CI machine has two cores), fixed seeds."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import samplenet  # noqa: E402,F401  (first: TensorFlow starts quietly, see tensorflow_start)
import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


from tests.programs import run_program  # noqa: E402,F401  (a fixture for every test module)

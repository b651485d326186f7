"""samplenet.tensorflow_start: TensorFlow's start-up log lines, filtered as its log level says."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from samplenet.tensorflow_start import min_log_level, start_up_lines_to_keep

REPO = Path(__file__).resolve().parents[1]
# What TensorFlow 2.21 printed on a machine with a CUDA toolkit and no GPU (oneDNN on).
BANNER = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
          "STDERR\n")
ONEDNN = ("I0000 00:00:1796678134.485036    2619 port.cc:153] oneDNN custom operations are on. "
          "You may see slightly different numerical results due to floating-point round-off "
          "errors from different computation orders.\n")
CUDART = ("I0000 00:00:1796678134.485357    2619 cudart_stub.cc:31] Could not find cuda drivers "
          "on your machine, GPU will not be used.\n")
FEATURES = ("I0000 00:00:1796678025.506565    2191 cpu_feature_guard.cc:227] This TensorFlow "
            "binary is optimized to use available CPU instructions in performance-critical "
            "operations.\nTo enable the following instructions: AVX2 FMA, in other operations, "
            "rebuild TensorFlow with the appropriate compiler flags.\n")
CUINIT = ("E0000 00:00:1796678033.129792    2191 cuda_platform.cc:52] failed call to cuInit: "
          "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
DTYPE_NOTE = ("E0000 00:00:1796690597.806779    4377 util.cc:131] oneDNN supports DT_INT32 only "
              "on platforms with AVX-512. Falling back to the default Eigen-based "
              "implementation if present.\n")
WARNING = "W1207 21:30:01.123456    2191 some_op.cc:12] a real warning\n"
ERROR = "E1207 21:30:01.123456    2191 some_op.cc:40] a real error\nits second line\n"
OTHER = "a line of another library, before any log record\n"
CAPTURED = OTHER + BANNER + ONEDNN + CUDART + FEATURES + WARNING + CUINIT + DTYPE_NOTE + ERROR


@pytest.mark.parametrize("level, expected", [
    (0, CAPTURED),
    (1, OTHER + WARNING + CUINIT + DTYPE_NOTE + ERROR),
    (2, OTHER + ERROR),
    (3, OTHER),
])
def test_start_up_lines_to_keep_applies_the_log_level(level, expected):
    assert start_up_lines_to_keep(CAPTURED, level) == expected


@pytest.mark.parametrize("value, level", [(None, 0), ("2", 2), ("7", 3), ("-1", 0), ("x", 0)])
def test_min_log_level_reads_the_environment(value, level):
    assert min_log_level({} if value is None else {"TF_CPP_MIN_LOG_LEVEL": value}) == level


def _stderr_of(code, **environment):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "PYTHONPATH": str(REPO), **environment}
    if "TF_CPP_MIN_LOG_LEVEL" not in environment:
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.slow
def test_import_samplenet_prints_nothing_where_tensorflow_would():
    """A user's environment (no log level set): importing samplenet and running TensorFlow,
    including the integer and boolean transposes oneDNN has a note about on CPUs without
    AVX-512, prints nothing on stderr, while TensorFlow at level 0 prints its start-up lines
    here. The eager runtime is still unconfigured after the import."""
    code = ("import samplenet, tensorflow as tf\n"
            "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
            "cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(\n"
            "    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
            "assert len(tf.config.list_logical_devices('CPU')) == 2\n"
            "tf.transpose(tf.ones([3, 2], tf.int32)); tf.transpose(tf.ones([3, 2], tf.bool))\n"
            "tf.function(lambda x: tf.transpose(x * 2))(tf.ones([5, 3], tf.int64))\n")
    assert _stderr_of(code) == ""
    assert "port.cc" in _stderr_of(code, TF_CPP_MIN_LOG_LEVEL="0")


def test_captured_stderr_writes_back_kept_native_lines_and_all_python_output():
    """Native writes to file descriptor 2 are filtered, Python's ``sys.stderr`` writes are
    kept, and the file descriptor works as before afterwards."""
    code = ("import os, sys\n"
            "from samplenet.tensorflow_start import _captured_stderr\n"
            "with _captured_stderr(2):\n"
            f"    os.write(2, {(CUDART + ERROR).encode()!r})\n"
            "    print('from python', file=sys.stderr)\n"
            "os.write(2, b'after\\n')\n")
    assert _stderr_of(code) == ERROR + "from python\nafter\n"

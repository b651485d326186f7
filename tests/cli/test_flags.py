"""The shared flag helpers of the command-line programs: --threads."""
import subprocess
import sys

import tensorflow as tf

from samplenet.cli.flags import apply_threads


def test_apply_threads_sets_tensorflow_threads_in_a_fresh_process():
    program = ("from samplenet.cli.flags import apply_threads\n"
               "apply_threads(1)\n"
               "import tensorflow as tf\n"
               "tf.constant(1.0) + 1.0\n"
               "print(tf.config.threading.get_intra_op_parallelism_threads(),\n"
               "      tf.config.threading.get_inter_op_parallelism_threads())\n")
    process = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                             timeout=120)
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ["1", "1"]


def test_apply_threads_after_tensorflow_started_warns_and_keeps_setting(capsys):
    tf.constant(1.0) + 1.0  # TensorFlow has started in this (the test) process
    before = tf.config.threading.get_intra_op_parallelism_threads()
    apply_threads(before + 3)
    assert tf.config.threading.get_intra_op_parallelism_threads() == before
    assert f"--threads {before + 3} not applied" in capsys.readouterr().err


def test_apply_threads_default_after_tensorflow_started_is_silent(capsys):
    tf.constant(1.0) + 1.0
    before = tf.config.threading.get_intra_op_parallelism_threads()
    apply_threads(before + 3, explicit=False)
    assert tf.config.threading.get_intra_op_parallelism_threads() == before
    assert capsys.readouterr().err == ""


def test_apply_threads_zero_leaves_tensorflow_default(capsys):
    before = tf.config.threading.get_intra_op_parallelism_threads()
    apply_threads(0)
    assert tf.config.threading.get_intra_op_parallelism_threads() == before
    assert capsys.readouterr().err == ""

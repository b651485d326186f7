"""A training process killed with SIGKILL, again and again, resumes from its last checkpoint and
ends where an uninterrupted run ends: same optimizer steps, same weights, no corrupted files."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from samplenet.loading import load_model
from samplenet.models.registry import EXTRA_FAMILIES_ENV
from samplenet.testing.toy_model import toy_config
from samplenet.training import checkpoints, trainer
from samplenet.training.run_dir import RunDir

REPO = Path(__file__).resolve().parents[2]
EPOCHS, STEPS = 4, 150
TIMEOUT_SECONDS = 240


def _start(config_path, run_dir, resume):
    env = {**os.environ, EXTRA_FAMILIES_ENV: "samplenet.testing.toy_model",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "train.py", f"--config={config_path}", f"--logdir={run_dir}",
               "--verbose=0", *(["--resume"] if resume else [])]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _latest_epoch(run_dir):
    latest = checkpoints.latest_checkpoint(RunDir(run_dir).checkpoints)
    return checkpoints.read_state(latest)["epoch"] if latest is not None else 0


def _wait_for(condition, process, what):
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"training exited ({process.returncode}) before {what}: "
                                 f"{process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()


@pytest.mark.slow
def test_training_killed_three_times_resumes_to_the_uninterrupted_result(tmp_path):
    config = toy_config(epochs=EPOCHS, steps_per_epoch=STEPS, checkpoint_policy="all")
    config_path = tmp_path / "toy.json"
    config_path.write_text(json.dumps(config))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    trainer.train(config, whole, verbose=0)

    rng = np.random.default_rng(0)
    # Kill mid-epoch once the first and the second checkpoint exist (a random moment into the
    # next epoch), then once during start-up of the resumed process.
    for round_, after_epoch in enumerate((1, 2, None)):
        process = _start(config_path, killed, resume=round_ > 0)
        if after_epoch is None:
            time.sleep(rng.uniform(1.0, 5.0))
        else:
            _wait_for(lambda: _latest_epoch(killed) >= after_epoch, process,
                      f"checkpoint {after_epoch}")
            time.sleep(rng.uniform(0.0, 0.3))
        assert process.poll() is None, "training ended before it could be killed"
        _kill(process)
        assert _latest_epoch(killed) < EPOCHS
    process = _start(config_path, killed, resume=True)
    _, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    assert process.returncode == 0, stderr

    finished = checkpoints.read_state(checkpoints.latest_checkpoint(RunDir(killed).checkpoints))
    assert finished["epoch"] == EPOCHS and finished["step"] == EPOCHS * STEPS
    assert not list((killed / "checkpoints").glob(".tmp-*"))  # leftovers of killed writes pruned
    for folder in checkpoints.complete_checkpoints(killed / "checkpoints"):
        state = checkpoints.read_state(folder)  # every checkpoint left is whole and readable
        assert state["step"] == state["epoch"] * STEPS
    for resumed, uninterrupted in zip(load_model(killed).weights, load_model(whole).weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(resumed),
                                   keras.ops.convert_to_numpy(uninterrupted), rtol=1e-5,
                                   atol=1e-6)

"""Multi-worker training (``--strategy multiworker``): two worker processes on 127.0.0.1 with
``TF_CONFIG``, compared with one process; a worker killed mid-run and the restart.

Every worker process is started with a timeout, so a hang fails the test instead of stalling CI.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from samplenet.testing.multiworker import identical_files_folder, tiny_configs
from samplenet.testing.toy_model import toy_config
from samplenet.training import checkpoints, trainer
from samplenet.training.run_dir import RunDir

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 300  # per group of worker processes; importing TensorFlow alone takes ~15 s
# Loss of a two-worker run vs one process on the same global batches. float32 sums in another
# order (two per-worker means of 2 rows vs one mean of 4 rows; an all-reduce of two halves) may
# move the last bits (measured: equal to the last bit on this machine). A gradient of the wrong
# scale (the workers' gradients summed instead of averaged) moved the loss by 0.9-2.2 % here.
LOSS_RTOL = 1e-4

pytestmark = pytest.mark.slow


def _free_ports(count):
    """``count`` free TCP ports on 127.0.0.1 (bound to port 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start_workers(argv, logs, num_workers=2):
    """Start ``num_workers`` processes running ``argv`` with a TF_CONFIG of workers on fresh
    local ports; each one's output goes to ``logs/worker-<i>.txt``."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(num_workers)]}
    logs.mkdir(parents=True, exist_ok=True)
    workers = []
    for index in range(num_workers):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2",
               "SAMPLENET_EXTRA_FAMILIES": "samplenet.testing.toy_model",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        with open(logs / f"worker-{index}.txt", "a", encoding="utf-8") as log:
            workers.append(subprocess.Popen([sys.executable, *argv(index)], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=REPO))
    return workers


def _wait(workers, timeout=TIMEOUT_SECONDS):
    """Exit codes of ``workers``; every worker is killed (and the test fails) at the timeout."""
    deadline = time.monotonic() + timeout
    try:
        return [worker.wait(timeout=max(1.0, deadline - time.monotonic()))
                for worker in workers]
    except subprocess.TimeoutExpired:
        pytest.fail(f"multi-worker processes still running after {timeout} s")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def _output(logs, index):
    return (logs / f"worker-{index}.txt").read_text(encoding="utf-8", errors="replace")


def _latest_state(run_dir):
    return checkpoints.read_state(checkpoints.latest_checkpoint(RunDir(run_dir).checkpoints))


def test_two_workers_train_like_one_process_and_only_chief_writes(tmp_path):
    """SampleRNN (carried state in ON_READ variables) and WaveNet, one after the other in the
    same two worker processes; data where every global batch is the same whatever each worker's
    shard of the files, so one process sees the same batches."""
    data = identical_files_folder(tmp_path / "data")
    logs = tmp_path / "logs"
    workers = _start_workers(
        lambda index: ["-m", "samplenet.testing.multiworker", str(data),
                       str(tmp_path / f"runs-{index}"), str(tmp_path / f"history-{index}.json")],
        logs)
    codes = _wait(workers)
    assert codes == [0, 0], _output(logs, 0)[-3000:] + _output(logs, 1)[-3000:]

    assert not (tmp_path / "runs-1").exists()  # the other worker wrote nothing
    histories = [json.loads((tmp_path / f"history-{index}.json").read_text()) for index in (0, 1)]
    assert histories[0] == histories[1]
    for name, config in tiny_configs(data).items():
        chief_run = tmp_path / "runs-0" / name
        state = _latest_state(chief_run)
        assert state["epoch"] == 1 and state["step"] == config["train"]["steps_per_epoch"]
        assert (chief_run / "config.json").is_file() and (chief_run / "log.csv").is_file()
        assert (chief_run / "samples" / "epoch-00001.wav").is_file()
        single = trainer.train(config, tmp_path / "single" / name, verbose=0)
        np.testing.assert_allclose(histories[0][name]["loss"], single["loss"], rtol=LOSS_RTOL,
                                   err_msg=name)


def test_lost_worker_fails_fast_and_restart_resumes(tmp_path):
    """Kill worker 1 once the chief has written a checkpoint: the chief exits with one error line
    naming worker 1 and --resume; both restarted with --resume finish from that checkpoint."""
    config_path = tmp_path / "toy.json"
    config_path.write_text(json.dumps(toy_config(epochs=100, steps_per_epoch=2)))
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    command = ["train.py", "--strategy", "multiworker", "--logdir", str(run_dir), "--verbose",
               "0"]
    workers = _start_workers(lambda index: [*command, "--config", str(config_path)], logs)
    latest = run_dir / "checkpoints" / checkpoints.LATEST
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not latest.is_file() and time.monotonic() < deadline and workers[0].poll() is None:
        time.sleep(0.2)
    workers[1].send_signal(signal.SIGKILL)
    codes = _wait(workers, timeout=120)  # health checks every 5 s: a hang is far beyond this
    assert latest.is_file(), _output(logs, 0)[-3000:]
    assert codes[0] == 1 and codes[1] == -signal.SIGKILL
    errors = [line for line in _output(logs, 0).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, _output(logs, 0)[-3000:]
    assert "worker 1 (127.0.0.1:" in errors[0] and "--resume" in errors[0]

    epoch = _latest_state(run_dir)["epoch"]
    workers = _start_workers(lambda index: [*command, "--resume", "--epochs", str(epoch + 1)],
                             logs)
    assert _wait(workers) == [0, 0], _output(logs, 0)[-3000:]
    state = _latest_state(run_dir)
    assert state["epoch"] == epoch + 1 and state["step"] == 2 * (epoch + 1)
    assert "resumed" in _output(logs, 1)  # the other worker restored the checkpoint too

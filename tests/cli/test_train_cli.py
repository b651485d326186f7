"""Tests of samplenet.cli.train: config assembly from flags in-process, and the whole
train -> generate -> evaluate journey plus error reporting in subprocesses."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from absl import flags

from samplenet.cli import flags as cli_flags
from samplenet.cli import train as train_cli
from samplenet import config as schema
from samplenet.models.registry import EXTRA_FAMILIES_ENV
from samplenet.testing.toy_model import toy_config

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=None):
    """Run ``python <args>`` from the repository with the toy family registered, in the
    environment a user has (TensorFlow's log level not set; oneDNN's start-up line forced on,
    as on CPUs where TensorFlow uses oneDNN)."""
    env = {**os.environ, EXTRA_FAMILIES_ENV: "samplenet.testing.toy_model",
           "TF_ENABLE_ONEDNN_OPTS": "1", "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def error_lines(stderr):
    """The non-empty lines of ``stderr``."""
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_line_error(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(word in lines[0] for word in words), lines[0]


def _parse(tmp_path, *argv):
    flag_values = flags.FlagValues()
    train_cli.define_flags(flag_values)
    flag_values(["train", *argv])
    return flag_values


def _config_file(tmp_path, **train):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(toy_config(**train)))
    return path


def test_build_config_explicit_flags_override_the_train_section(tmp_path):
    path = _config_file(tmp_path, batch_size=4, epochs=1)
    values = _parse(tmp_path, f"--config={path}", "--epochs=5", "--set=q_levels=16",
                    "--set=train.learning_rate=0.01", "--data=builtin:sines")
    config, name = train_cli.build_config(values)
    assert name == "toy_ar"
    assert config["train"]["epochs"] == 5 and config["train"]["batch_size"] == 4
    assert config["q_levels"] == 16 and config["train"]["learning_rate"] == 0.01
    assert config["data"]["spec"] == "builtin:sines"


def test_build_config_flags_not_given_keep_the_config(tmp_path):
    path = _config_file(tmp_path, steps_per_epoch=2, seed=9)
    config, _ = train_cli.build_config(_parse(tmp_path, f"--config={path}"))
    assert config["train"]["steps_per_epoch"] == 2 and config["train"]["seed"] == 9
    assert config["data"]["spec"] == toy_config()["data"]["spec"]


def test_build_config_resume_reads_the_run_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(toy_config(model={"kernel_size": 3})))
    config, _ = train_cli.build_config(_parse(tmp_path, f"--logdir={run}", "--resume",
                                              "--epochs=4"))
    assert config["kernel_size"] == 3 and config["train"]["epochs"] == 4


def test_build_config_model_and_config_together_raise(tmp_path):
    path = _config_file(tmp_path)
    with pytest.raises(ValueError, match="not both"):
        train_cli.build_config(_parse(tmp_path, f"--config={path}", "--model=toy_ar"))


def test_size_notes_warn_before_a_full_size_run_without_a_gpu_only():
    config = schema.config_for("samplernn_3tier")
    before, after = train_cli.size_notes("samplernn_3tier", config, has_gpu=False)
    assert before.startswith("warning: samplernn_3tier is the full-size model")
    assert "python train.py --model samplernn_3tier_cpu" in before and after is None
    assert train_cli.size_notes("samplernn_3tier", config, has_gpu=True) == (None, None)
    assert train_cli.size_notes(None, config, has_gpu=False) == (None, None)  # --config


def test_size_notes_after_a_cpu_sized_run_tell_how_to_train_the_full_size_model():
    config = schema.config_for("samplernn_3tier_cpu")
    before, after = train_cli.size_notes("samplernn_3tier_cpu", config, has_gpu=False)
    assert before is None
    assert after.startswith("samplernn_3tier_cpu is samplernn_3tier sized for a CPU (dim 256 "
                            "(1024), seq_len 512 (1024), train.batch_size 16 (32)")
    assert after.endswith("python train.py --model samplernn_3tier")


def test_report_errors_prints_one_line_and_returns_non_zero(capsys):
    @cli_flags.report_errors
    def main(argv):
        raise ValueError("bad thing in 'x'")

    assert main(["prog"]) == 1
    assert capsys.readouterr().err == "error: bad thing in 'x'\n"
    assert main(["prog", "stray"]) == 2


@pytest.mark.slow
def test_cli_train_generate_evaluate_round_trip(tmp_path):
    path = _config_file(tmp_path, steps_per_epoch=2)
    run = tmp_path / "run"
    result = run_cli("train.py", f"--config={path}", f"--logdir={run}", "--verbose=0")
    assert result.returncode == 0, result.stderr
    assert f"run directory: {run}" in result.stdout and "bits per sample" in result.stdout
    assert json.loads((run / "config.json").read_text())["family"] == "toy_ar"
    [test_line] = [line for line in result.stdout.splitlines() if line.startswith("test ")]
    trained, untrained = map(float, re.findall(r"\d+\.\d{4}", test_line))
    assert test_line.startswith("test bits per sample (") and trained != untrained
    assert error_lines(result.stderr) == []  # nothing but samplenet's lines, and none here

    out = tmp_path / "generated"
    prime = tmp_path / "prime.wav"
    soundfile.write(prime, np.sin(np.arange(400) / 5.0) * 0.5, 8000)  # resampled to 4 kHz
    result = run_cli("generate.py", f"--ckpt={run}", "--seconds=0.05", "--num_seqs=2",
                     "--temperature=1.0,0.5", "--seed=3", f"--out_dir={out}",
                     "--chunk_seconds=0.02", f"--prime={prime}")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["sample_0.wav", "sample_1.wav"]
    info = soundfile.info(out / "sample_0.wav")
    assert (info.samplerate, info.frames, info.subtype) == (4000, 200, "PCM_16")

    result = run_cli("-m", "samplenet.evaluate", f"--ckpt={run}", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["split"] == "test" and report["num_files"] >= 1
    assert report["bits_per_sample"] > 0 and "loss_nats" in report and "accuracy" in report
    assert report["checkpoint"].endswith("ckpt-00001")

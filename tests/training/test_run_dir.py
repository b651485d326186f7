"""Tests of samplenet.training.run_dir."""
import datetime
import json
import os

import pytest

from samplenet.training import run_dir
from samplenet.training.run_dir import RunDir, atomic_write_text, default_logdir


def test_default_logdir_names_preset_and_time():
    now = datetime.datetime(2024, 3, 5, 14, 7, 9)
    assert default_logdir("samplernn_3tier", now) == os.path.join(
        "runs", "samplernn_3tier-20240305-140709")


def test_run_dir_create_makes_layout(tmp_path):
    run = RunDir(tmp_path / "run").create()
    for folder in ("checkpoints", "tensorboard", "samples"):
        assert (tmp_path / "run" / folder).is_dir()
    assert run.config_path == tmp_path / "run" / "config.json"
    assert run.log_csv == tmp_path / "run" / "log.csv"


def test_write_config_round_trips_and_leaves_no_temporary(tmp_path):
    run = RunDir(tmp_path).create()
    config = {"family": "toy_ar", "q_levels": 8, "train": {"epochs": 2}}
    run.write_config(config)
    assert run.read_config() == config
    assert json.loads(run.config_path.read_text()) == config
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["config.json"]


def test_atomic_write_text_failed_rename_keeps_old_content(tmp_path, monkeypatch):
    path = tmp_path / "latest"
    atomic_write_text(path, "old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(run_dir.os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]


def test_read_config_missing_raises_naming_folder(tmp_path):
    with pytest.raises(ValueError, match="not a run directory"):
        RunDir(tmp_path / "nothing").read_config()


def test_read_config_bad_json_raises_naming_file(tmp_path):
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match="config.json.*not valid JSON"):
        RunDir(tmp_path).read_config()

"""Tests of ``python -m samplenet.analyze`` in subprocesses: JSON reports, figures, a suggested
config file, and one-line errors for bad sources."""
import json
import sys

import pytest

from samplenet.analysis import plots
from samplenet import config as schema
from tests.cli.test_train_cli import assert_one_line_error, run_cli

SPEC = "builtin:ar2?num_items=4&item_seconds=1"


@pytest.mark.slow
def test_data_json_figures_and_suggested_config(tmp_path):
    config_path, figures = tmp_path / "suggested.json", tmp_path / "figures"
    result = run_cli("-m", "samplenet.analyze", f"--data={SPEC}", "--json",
                     f"--plots={figures}", "--suggest=linear_ar", f"--out={config_path}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["num_files"] == 4 and report["total_seconds"] == pytest.approx(4.0)
    assert report["sample_rates"] == {"16000": 4}
    assert report["correlation_length"]["samples"] >= 1
    assert report["correlation_length"]["ms"] == pytest.approx(
        report["correlation_length"]["samples"] / 16.0)
    assert report["suggestion"]["config_file"] == str(config_path)
    assert sorted(path.split("/")[-1] for path in report["figures"]) == [
        "autocorrelation.png", "durations.png", "examples.png"]
    for path in report["figures"]:
        with open(path, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    config = schema.resolve(schema.load_config_file(config_path))
    assert config["family"] == "linear_ar" and config["data"]["spec"] == SPEC
    assert config["order"] == report["predictable_structure"]["lag_90"]["samples"]


def test_data_text_report():
    result = run_cli("-m", "samplenet.analyze", f"--data={SPEC}")
    assert result.returncode == 0, result.stderr
    for row in ("files", "sample rates", "RMS level", "silence", "correlation length",
                "90 % predictable at"):
        assert row in result.stdout


@pytest.mark.slow
def test_model_json_report():
    result = run_cli("-m", "samplenet.analyze", "--model=wavenet_toy", "--set=num_stacks=1",
                     "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["receptive_field"] == report["receptive_field_measured"] == 2 + 127
    assert report["depth"] == 1 + 7 + 2
    assert report["gamma"] == pytest.approx(report["parameters"] / report["depth"])
    assert report["flops_per_sample"]["generation"] > 0


@pytest.mark.parametrize("spec,words", [
    ("/no/such/folder", ["does not exist"]),
    ("builtin:nothing", ["unknown built-in source"]),
    ("builtin:ar2?bogus=1", ["bad parameter"]),
])
def test_bad_sources_fail_with_one_line(spec, words):
    assert_one_line_error(run_cli("-m", "samplenet.analyze", f"--data={spec}"), *words)


def test_empty_folder_fails_with_one_line(tmp_path):
    assert_one_line_error(run_cli("-m", "samplenet.analyze", f"--data={tmp_path}"),
                          "no audio files")


def test_flag_combinations_fail_with_one_line():
    assert_one_line_error(run_cli("-m", "samplenet.analyze"), "--data", "--model")
    assert_one_line_error(run_cli("-m", "samplenet.analyze", f"--data={SPEC}", "--out=x.json"),
                          "--suggest")


def test_missing_matplotlib_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ValueError, match="needs matplotlib"):
        plots.require_matplotlib()

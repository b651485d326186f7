"""Smoke test of benchmarks/run.py: a tiny generation benchmark, the op-latency reference and
the cuDNN training variant (unavailable without a GPU) in a subprocess, with one TensorFlow
thread."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.mark.slow
def test_benchmark_run_quick_writes_expected_json(tmp_path):
    output = tmp_path / "bench.json"
    process = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only",
         "op-latency,gen-samplernn_2tier-b1,train-samplernn_2tier-b8-cudnn",
         "--threads", "1",
         "--set", "dim=8", "--set", "emb_size=8", "--set", "seq_len=64", "--seconds", "0.1",
         "--json", str(output)],
        capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr
    report = json.loads(output.read_text())
    assert {"cpu", "cores", "tensorflow", "date"} <= set(report["machine"])
    assert report["settings"]["threads"] == 1
    latency, row, cudnn = report["results"]
    assert latency["name"] == "op-latency" and "threads=1" in latency["config"]
    assert latency["figures"][0]["unit"] == "us" and latency["figures"][0]["median"] > 0
    assert "unavailable" not in row, row.get("unavailable")
    assert row["name"] == "gen-samplernn_2tier-b1"
    assert "dim=8" in row["config"] and "threads=1" in row["config"]
    assert row["peak_rss_mb"] > 0 and 0 < row["weight_megabytes"] < 1
    figures = {item["figure"]: item for item in row["figures"]}
    assert set(figures) == {"generation total", "generation per stream", "real-time factor"}
    total = figures["generation total"]
    assert len(total["values"]) == 3
    assert 0 < total["min"] <= total["median"] <= total["max"]
    assert "gen-samplernn_2tier-b1" in process.stdout  # the printed table
    assert "| device |" in process.stdout
    for result in report["results"]:  # the device each benchmark ran on
        assert result["device"] == f"CPU ({report['machine']['cores']} cores)" \
            or not result["device"].startswith("CPU")
    assert cudnn["name"] == "train-samplernn_2tier-b8-cudnn"
    assert "rnn_implementation=cudnn" in cudnn["config"]
    if cudnn["device"].startswith("CPU"):
        assert "needs a GPU" in cudnn["unavailable"]
    else:
        assert cudnn["figures"][0]["unit"] == "targets/s"

"""Smoke test of benchmarks/run.py: one tiny generation benchmark in a subprocess."""
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
        [sys.executable, str(RUN), "--quick", "--only", "gen-samplernn_2tier-b1",
         "--set", "dim=8", "--set", "emb_size=8", "--set", "seq_len=64", "--seconds", "0.1",
         "--json", str(output)],
        capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr
    report = json.loads(output.read_text())
    assert {"cpu", "cores", "tensorflow", "date"} <= set(report["machine"])
    [row] = report["results"]
    assert "unavailable" not in row, row.get("unavailable")
    assert row["name"] == "gen-samplernn_2tier-b1"
    assert "dim=8" in row["config"] and row["peak_rss_mb"] > 0
    figures = {item["figure"]: item for item in row["figures"]}
    assert set(figures) == {"generation total", "generation per stream", "real-time factor"}
    total = figures["generation total"]
    assert len(total["values"]) == 3
    assert 0 < total["min"] <= total["median"] <= total["max"]
    assert "gen-samplernn_2tier-b1" in process.stdout  # the printed table

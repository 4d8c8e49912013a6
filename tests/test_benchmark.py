"""A small run of benchmarks/bench.py, to keep it working (not a timing test)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_runs_and_reports_ratios(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench.py"), "--examples", "16",
         "--batch-size", "8", "--epochs", "2", "--gc-steps", "1", "--json", "bench.json"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["ratios"]) == {"epoch_time_ratio", "gc_overhead", "peak_rss_ratio"}
    assert all(value > 0 for value in results["ratios"].values())
    assert results["ratios"]["epoch_time_ratio"] == results["project"]["epoch_time"] / results["seed"]["epoch_time"]
    for name in ("seed", "project"):
        assert [len(times) for times in results[name]["epoch_times"]] == [2, 2]
        assert results[name]["peak_rss_gb"] > 0.3
    assert "epoch_time_ratio:" in result.stdout and "peak_rss_ratio:" in result.stdout

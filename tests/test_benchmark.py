"""A small run of benchmarks/bench.py, to keep it working (not a timing test)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_runs_and_reports_ratios(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "bench.py"),
            "--examples",
            "16",
            "--batch-size",
            "8",
            "--epochs",
            "2",
            "--gc-steps",
            "1",
            "--json",
            "bench.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["ratios"]) == {
        "epoch_time_ratio",
        "gc_overhead",
        "peak_rss_ratio",
    }
    assert all(value > 0 for value in results["ratios"].values())
    assert (
        results["ratios"]["epoch_time_ratio"]
        == results["project"]["epoch_time"] / results["seed"]["epoch_time"]
    )
    for name in ("seed", "project"):
        assert [len(times) for times in results[name]["epoch_times"]] == [2, 2]
        assert results[name]["peak_rss_gib"] > 0.3
    assert "epoch_time_ratio:" in result.stdout and "peak_rss_ratio:" in result.stdout


def test_arm_timing_runs_and_reports_both_ratios(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "arm_timing.py"),
            *("--examples", "8", "--repeats", "1", "--epochs", "2"),
            *("--json", "timing.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "timing.json").read_text())
    (runs,) = results["runs"].values()
    (run,) = runs
    plain, gc = run["epoch_times"]["rmsprop"], run["epoch_times"]["gc"]
    assert len(plain) == len(gc) == 2
    # The example's training time is the warm epoch's; the other, every epoch's.
    assert run["ratio"] == plain[1] / gc[1]
    assert run["all_epochs_ratio"] == sum(plain) / sum(gc)
    assert "reported training time, RMSprop/GCRMSprop: mean " in result.stdout

"""benchmarks/speed/epoch_time_ratio.py: a small run to keep it working (not a
timing test), and README's quotes of the committed 16-process results."""

import json
import os

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT

RESULTS = os.path.join(ROOT, "benchmarks", "results")
SIXTEEN = ["epoch_time_ratio_16_before.json", "epoch_time_ratio_16_repeat.json"]


def test_epoch_time_ratio_runs_and_reports_both_ratios(run_benchmark, tmp_path):
    result = run_benchmark(
        "speed/epoch_time_ratio.py",
        *("--examples", "8", "--repeats", "1", "--epochs", "2"),
        *("--json", "timing.json"),
    )
    results = json.loads((tmp_path / "timing.json").read_text())
    (runs,) = results["runs"].values()
    (run,) = runs
    plain, gc = run["epoch_times"]["rmsprop"], run["epoch_times"]["gc"]
    assert len(plain) == len(gc) == 2
    # The example's training time is the warm epoch's; the other, every epoch's.
    assert run["ratio"] == plain[1] / gc[1]
    assert run["all_epochs_ratio"] == sum(plain) / sum(gc)
    assert "reported training time, RMSprop/GCRMSprop: mean " in result.stdout


def sixteen(name):
    """The warm-epoch ratios, recomputed from the epoch times, their mean and 95%
    t-interval, and in how many processes RMSprop's first epoch was the longer."""
    with open(os.path.join(RESULTS, name)) as file:
        results = json.load(file)
    assert results["config"]["epochs"] == 3 and results["config"]["examples"] == 1027
    runs = results["runs"]["gradient_centralization.py"]
    ratios = []
    for run in runs:
        plain, gc = run["epoch_times"]["rmsprop"], run["epoch_times"]["gc"]
        ratios.append(sum(plain[1:]) / sum(gc[1:]))
        assert run["ratio"] == pytest.approx(ratios[-1], rel=1e-12)
    mean = np.mean(ratios)
    low, high = stats.t.interval(0.95, len(ratios) - 1, mean, stats.sem(ratios))
    summary = results["summary"]["gradient_centralization.py: ratio"]
    assert summary["mean"] == pytest.approx(mean, rel=1e-12)
    assert summary["ci95"] == pytest.approx([low, high], rel=1e-12)
    first = sum(
        run["epoch_times"]["rmsprop"][0] > run["epoch_times"]["gc"][0] for run in runs
    )
    return len(runs), mean, (low, high), first


def test_readme_quotes_the_sixteen_processes():
    # Issue 33's target (mean within 1.5% of 1, interval holding 1) is not met by
    # the repeat: README quotes both runs as they are.
    before, repeat = (sixteen(name) for name in SIXTEEN)
    with open(os.path.join(ROOT, "README.md")) as file:
        readme = " ".join(file.read().split())
    processes, mean, (low, high), first = repeat
    assert f"the longer in {first} of {processes} fresh processes" in readme
    assert f"averaged {mean:.3f} (95% interval [{low:.3f}, {high:.3f}])" in readme
    processes, mean, (low, high), _ = before
    assert (
        f"over {processes} earlier ones, {mean:.3f} ([{low:.3f}, {high:.3f}])" in readme
    )

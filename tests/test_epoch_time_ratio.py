"""benchmarks/speed/epoch_time_ratio.py: a small run to keep it working (not a
timing test), and the READMEs' quotes of the committed fresh-process results."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from conftest import ROOT, flat_text

RESULTS = os.path.join(ROOT, "benchmarks", "results")
SCRIPT = "epoch_time_ratio.py"
SIXTEEN = ["epoch_time_ratio_16_before.json", "epoch_time_ratio_16_repeat.json"]
AFTER = "epoch_time_ratio_32_after.json"


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


FAKE_EXAMPLE = """
import json, os, sys
log = os.path.join({folder!r}, "order.log")
with open(log, "a") as file:
    file.write({name!r} + "\\n")
with open(log) as file:
    calls = file.read().split().count({name!r})
if calls == {fail_at}:
    sys.exit("failed on purpose")
arm = {{"training_time": {time}, "epoch_times": [9.0, {time}]}}
with open(sys.argv[sys.argv.index("--json") + 1], "w") as file:
    json.dump({{"runs": [{{"arms": {{"rmsprop": arm, "gc_rmsprop": arm}}}}]}}, file)
"""


def test_examples_take_turns_and_finished_repeats_are_kept(tmp_path):
    # Two stand-in examples: in every other repeat the second runs first, and when
    # one fails in the third repeat, the JSON keeps the two finished repeats.
    for name, time, fail_at in (("first.py", 2.0, 0), ("second.py", 3.0, 3)):
        source = FAKE_EXAMPLE.format(
            folder=str(tmp_path), name=name, time=time, fail_at=fail_at
        )
        (tmp_path / name).write_text(source)
    command = [sys.executable, os.path.join(ROOT, "benchmarks", "speed", SCRIPT)]
    command += ["--example", "first.py", "--example", "second.py"]
    command += ["--repeats", "3", "--epochs", "2", "--json", "timing.json"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and "failed on purpose" in result.stderr
    order = (tmp_path / "order.log").read_text().split()
    # Repeat 3 runs first.py, then second.py, which fails.
    expected = [
        "first.py",
        "second.py",
        "second.py",
        "first.py",
        "first.py",
        "second.py",
    ]
    assert order == expected
    kept = json.loads((tmp_path / "timing.json").read_text())
    assert {name: len(runs) for name, runs in kept["runs"].items()} == {
        "first.py": 2,
        "second.py": 2,
    }
    assert kept["summary"]["second.py: ratio"]["mean"] == 1.0


def fresh_processes(name, label="gradient_centralization.py"):
    """The warm-epoch ratios of `label`'s processes, recomputed from the epoch
    times: how many, their mean and 95% t-interval, and in how many processes
    RMSprop's first epoch was the longer."""
    with open(os.path.join(RESULTS, name)) as file:
        results = json.load(file)
    assert results["config"]["epochs"] == 3 and results["config"]["examples"] == 1027
    runs = results["runs"][label]
    ratios = []
    for run in runs:
        plain, gc = run["epoch_times"]["rmsprop"], run["epoch_times"]["gc"]
        ratios.append(sum(plain[1:]) / sum(gc[1:]))
        assert run["ratio"] == pytest.approx(ratios[-1], rel=1e-12)
    mean = np.mean(ratios)
    low, high = stats.t.interval(0.95, len(ratios) - 1, mean, stats.sem(ratios))
    summary = results["summary"][f"{label}: ratio"]
    assert summary["mean"] == pytest.approx(mean, rel=1e-12)
    assert summary["ci95"] == pytest.approx([low, high], rel=1e-12)
    first = sum(
        run["epoch_times"]["rmsprop"][0] > run["epoch_times"]["gc"][0] for run in runs
    )
    return len(runs), mean, (low, high), first


def test_readme_quotes_the_fresh_processes():
    # Issue 33: 16 processes of the example without the warm-up (80efff7) and 16
    # with it (8ca5559), run in turns; then more processes with it alone.
    readme = flat_text("README.md")
    with_warm_up, without = (
        fresh_processes(
            "epoch_time_ratio_16_after.json", f"{commit}:gradient_centralization.py"
        )
        for commit in ("8ca5559", "80efff7")
    )
    assert with_warm_up[0] == without[0] == 16
    assert (
        f"RMSprop's first epoch was the longer in {without[3]} of 16 fresh processes "
        f"without the warm-up, and in {with_warm_up[3]} of 16 with it" in readme
    )
    count, mean, (low, high), _ = fresh_processes(
        AFTER, "8ca5559:gradient_centralization.py"
    )
    assert count >= 16  # issue 33: at least 16 fresh processes
    _, old_mean, (old_low, old_high), _ = without
    assert f"Over {count} more fresh processes with the warm-up" in readme
    assert (
        f"the row's ratio RMSprop / GC averaged {mean:.3f} "
        f"(95% interval [{low:.3f}, {high:.3f}]), "
        f"against {old_mean:.3f} ([{old_low:.3f}, {old_high:.3f}]) over the 16 "
        "without it" in readme
    )
    # Issue 33's target, and what the interval leaves open.
    assert abs(mean - 1) <= 0.015 and low <= 1 <= high
    assert (
        "The mean is within 1.5% of 1 and the interval holds 1: "
        f"{count} processes find no lean left toward either optimizer, though one "
        f"of up to {100 * (high - 1):.1f}% toward GC, or {100 * (1 - low):.1f}% "
        "toward RMSprop, is not ruled out" in readme
    )


def test_benchmarks_readme_quotes_the_runs_before_and_after():
    # The three 16-process runs of the example before the warm-up (80efff7's
    # code), and the run with it alone.
    text = flat_text("benchmarks", "README.md")
    count, mean, (low, high), first = fresh_processes(
        AFTER, "8ca5559:gradient_centralization.py"
    )
    assert f"The row: {mean:.3f} [{low:.3f}, {high:.3f}]" in text
    assert f"RMSprop's first epoch the longer in {first} of {count}" in text
    without = fresh_processes(
        "epoch_time_ratio_16_after.json", "80efff7:gradient_centralization.py"
    )[1]
    earlier = [fresh_processes(name)[1] for name in SIXTEEN]
    assert (
        "{:.3f}, {:.3f} and {:.3f} in three runs without the warm-up".format(
            without, *earlier[::-1]
        )
        in text
    )

"""A small run of benchmarks/speed/epoch_time_ratio.py, to keep it working (not a
timing test)."""

import json


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

"""A small run of benchmarks/bench.py, to keep it working (not a timing test)."""

import json


def test_benchmark_runs_and_reports_ratios(run_benchmark, tmp_path):
    result = run_benchmark(
        "bench.py",
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
    )
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


def test_arm_timing_runs_and_reports_both_ratios(run_benchmark, tmp_path):
    result = run_benchmark(
        "arm_timing.py",
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


def test_attention_digits_centralizes_each_arm_as_designed(run_benchmark, tmp_path):
    arms = ["rmsprop", "wrong_axes", "true_axes", "left_alone"]
    result = run_benchmark(
        "attention_digits.py",
        *("--seeds", "1", "--epochs", "1", "--json", "attention.json"),
    )
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "axes centralized: " + ", ".join(arms) in lines
    # Gemma's layout (heads, inputs, head size): the heads, the inputs, none, none.
    for name in ("query", "key", "value"):
        assert f"attention/{name}/kernel (4, 32, 8): (), (0,), (1,), ()" in lines
    assert "classifier/kernel (32, 10): (), (0,), (0,), (0,)" in lines
    results = json.loads((tmp_path / "attention.json").read_text())
    assert results["produced"]["date"] and results["produced"]["commit"]
    (run,) = results["runs"]
    assert run["seed"] == 0
    assert set(run) == {"seed", *arms}
    # Same start and batches: only the optimizer makes the arms' figures differ.
    for arm in ("rmsprop", "wrong_axes", "left_alone"):
        assert run[arm] != run["true_axes"], arm
    assert all(0 <= run[arm]["test_accuracy"] <= 1 for arm in arms)
    assert set(results["summary"]) == {
        f"{metric}: {arm} - true_axes"
        for metric in ("test_accuracy", "final_train_loss")
        for arm in arms
        if arm != "true_axes"
    }
    for arm in ("rmsprop", "wrong_axes", "left_alone"):
        assert f"{arm} - true_axes = " in result.stdout

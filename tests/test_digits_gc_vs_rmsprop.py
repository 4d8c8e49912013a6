"""A tiny run of benchmarks/experiments/digits_gc_vs_rmsprop.py, to keep it working (no
assertion on the effect)."""

import json


def test_digits_gc_vs_rmsprop_prints_verdicts(run_benchmark, tmp_path):
    result = run_benchmark(
        "experiments/digits_gc_vs_rmsprop.py",
        *("--seeds", "2", "--epochs", "1", "--json", "result.json"),
    )
    lines = result.stdout.splitlines()
    for metric in ("test_accuracy", "final_train_loss"):
        (line,) = [line for line in lines if line.startswith(f"{metric}: ")]
        assert "GCRMSprop - RMSprop = " in line and "95% CI [" in line
        assert "over 2 paired seeds; verdict: " in line
    results = json.loads((tmp_path / "result.json").read_text())
    assert [run["seed"] for run in results["runs"]] == [0, 1]
    for run in results["runs"]:
        assert 0 <= run["gc_rmsprop"]["test_accuracy"] <= 1
        assert run["rmsprop"]["final_train_loss"] > 0
    assert set(results["summary"]) == {"test_accuracy", "final_train_loss"}
    assert all(len(s["ci95"]) == 2 for s in results["summary"].values())

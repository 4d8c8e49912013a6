"""A one-seed, one-epoch run of benchmarks/experiments/digits_attention_axes.py: each
arm centralizes the axes it is designed to (no assertion on the effect)."""

import json


def test_digits_attention_axes_centralizes_each_arm_as_designed(
    run_benchmark, tmp_path
):
    arms = ["rmsprop", "wrong_axes", "true_axes", "left_alone"]
    result = run_benchmark(
        "experiments/digits_attention_axes.py",
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

"""benchmarks/speed/gc_cost.py: the interleaved timing under a controlled clock, and
one backend's worker run end to end at tiny settings. The figures themselves are
benchmarks/results/gc_cost_cpu.json's, not a test's."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "speed"))
import gc_cost  # noqa: E402

sys.path.pop(0)


def test_interleaved_times_each_step_by_rounds_and_takes_the_median(monkeypatch):
    clock = {"now": 0.0, "calls": {"rmsprop": 0, "gc_rmsprop": 0}, "order": []}
    monkeypatch.setattr(gc_cost.time, "perf_counter", lambda: clock["now"])

    def step(name, seconds):
        def run():
            clock["now"] += seconds[clock["calls"][name] % len(seconds)]
            clock["calls"][name] += 1
            clock["order"].append(name)

        return run

    # RMSprop takes 1 s per call, GC 1.5 s.
    steps = {"rmsprop": step("rmsprop", [1.0]), "gc_rmsprop": step("gc_rmsprop", [1.5])}
    found = gc_cost.interleaved(steps, total=12, rounds=4)
    assert clock["calls"] == {"rmsprop": 13, "gc_rmsprop": 13}  # 1 warm-up + 4 x 3.
    assert found["steps_per_round"] == 3
    assert found["ms_per_step"] == {"rmsprop": 1000.0, "gc_rmsprop": 1500.0}
    assert gc_cost.with_ratio(found)["ratio"] == 1.5
    # Turns are taken: each round runs 3 calls of one, then 3 of the other.
    blocks = clock["order"][2::3]
    rounds = [set(blocks[i : i + 2]) for i in range(0, 8, 2)]
    assert rounds == [{"rmsprop", "gc_rmsprop"}] * 4

    # 1 warm-up, then rounds of 1 call: GC's third timed call is an outlier, which
    # the median leaves out.
    clock["calls"] = {"rmsprop": 0, "gc_rmsprop": 0}
    slow = {
        "rmsprop": step("rmsprop", [1.0]),
        "gc_rmsprop": step("gc_rmsprop", [2.0, 2.0, 2.0, 20.0, 2.0, 2.0]),
    }
    found = gc_cost.interleaved(slow, total=5, rounds=5)
    assert found["per_round_ms"]["gc_rmsprop"] == [
        2000.0,
        2000.0,
        20000.0,
        2000.0,
        2000.0,
    ]
    assert found["ms_per_step"]["gc_rmsprop"] == 2000.0
    assert gc_cost.with_ratio(found)["ratio"] == 2.0


def test_bad_counts_exit_2():
    with pytest.raises(SystemExit) as error:
        gc_cost.parse_args(["--rounds", "0"])
    assert error.value.code == 2


def test_one_backend_end_to_end_prints_and_writes_the_ratios(run_benchmark, tmp_path):
    result = run_benchmark(
        "speed/gc_cost.py",
        *("--backends", "tensorflow", "--apply-steps", "2", "--train-steps", "2"),
        *("--rounds", "2", "--batch-size", "2", "--json", "report.json"),
    )
    with open(tmp_path / "report.json") as file:  # run_benchmark runs in tmp_path.
        report = json.load(file)
    assert {"date", "commit", "command", "cpu_count"} <= set(report["produced"])
    assert report["produced"]["command"].endswith("--json report.json")
    found = report["backends"]["tensorflow"]
    assert found["versions"]["keras"] and found["versions"]["tensorflow"]
    assert found["apply_efficientnetb0"]["variables"] == 213
    assert found["train_step"]["batch_size"] == 2
    lines = result.stdout.splitlines()
    for key, label in (
        ("apply_efficientnetb0", "apply(), EfficientNetB0"),
        ("train_step", "training step, batch 2"),
    ):
        figures = found[key]
        ms = figures["ms_per_step"]
        assert figures["ratio"] == pytest.approx(ms["gc_rmsprop"] / ms["rmsprop"])
        assert all(len(times) == 2 for times in figures["per_round_ms"].values())
        # The printed row holds the same figures as the report.
        row = next(line for line in lines if label in line).split()
        assert row[0] == "tensorflow"
        printed = [float(cell) for cell in row[-3:]]
        assert printed == pytest.approx(
            [ms["rmsprop"], ms["gc_rmsprop"], figures["ratio"]], abs=0.01
        )


def test_the_docs_quote_the_committed_figures():
    with open(os.path.join(ROOT, "benchmarks", "results", "gc_cost_cpu.json")) as file:
        report = json.load(file)
    with open(os.path.join(ROOT, "benchmarks", "README.md")) as file:
        table = file.read()
    names = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
    for backend, found in report["backends"].items():
        apply, step = found["apply_efficientnetb0"], found["train_step"]
        row = next(
            line
            for line in table.splitlines()
            if line.startswith(f"| {names[backend]} ")
        )
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1:] == [
            f"{apply['ms_per_step']['rmsprop']:.2f} ms",
            f"{apply['ms_per_step']['gc_rmsprop']:.2f} ms",
            f"{apply['ratio']:.3f}",
            f"{step['ms_per_step']['rmsprop'] / 1000:.4g} s",
            f"{step['ms_per_step']['gc_rmsprop'] / 1000:.4g} s",
            f"{step['ratio']:.3f}",
        ]

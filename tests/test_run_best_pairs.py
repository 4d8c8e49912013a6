"""benchmarks/tools/run_best_pairs.py: each optimizer at its own learning rate, one
pair per process, against the example's own pair."""

import json
import subprocess
import sys

from test_run_pairs import ROOT

SCRIPT = f"{ROOT}/benchmarks/tools/run_best_pairs.py"
FLAGS = ("--mock-data", "8", "--epochs", "2", "--batch-size", "4")


def run(*command, cwd):
    result = subprocess.run(
        [sys.executable, *command], cwd=cwd, capture_output=True, text=True
    )
    return result


def arms_without_times(report):
    """Each arm's figures and start, without its (machine-dependent) times."""
    (pair,) = report["runs"]
    times = ("epoch_times", "training_time")
    return {
        key: {k: v for k, v in arm.items() if k not in times}
        for key, arm in pair["arms"].items()
    }


def test_rates_of_their_own_and_the_example_s_pair_when_equal(tmp_path):
    example = run(
        f"{ROOT}/gradient_centralization.py",
        *("--seed", "5", "--json", "example.json", "--learning-rate", "0.01"),
        *FLAGS,
        cwd=tmp_path,
    )
    assert example.returncode == 0, example.stderr[-3000:]
    reports = {}
    for name, gc_rate in (("same", "0.01"), ("other", "0.0001")):
        result = run(
            SCRIPT,
            name,
            *("--seeds", "5", "5", "--rmsprop-learning-rate", "0.01"),
            *("--gc-learning-rate", gc_rate),
            *FLAGS,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        reports[name] = json.loads((tmp_path / name / "seed_5.json").read_text())
    expected = arms_without_times(json.loads((tmp_path / "example.json").read_text()))
    # Equal rates: the example's own pair, to the bit (CPU, the same seed).
    assert arms_without_times(reports["same"]) == expected
    # GC at a rate of its own: RMSprop's run unchanged, GC's from the same start
    # trained differently; the report says both rates.
    other = arms_without_times(reports["other"])
    assert other["rmsprop"] == expected["rmsprop"]
    assert (
        other["gc_rmsprop"]["initial_weights"]
        == expected["gc_rmsprop"]["initial_weights"]
    )
    assert other["gc_rmsprop"]["history"] != expected["gc_rmsprop"]["history"]
    config = reports["other"]["config"]
    assert (config["learning_rate"], config["gc_learning_rate"]) == (0.01, 0.0001)


def test_bad_input_exits_2(tmp_path):
    rates = ("--rmsprop-learning-rate", "1e-4", "--gc-learning-rate", "3e-4")
    for flags in (
        ["--seeds", "5", "4", *rates],
        ["--seeds", "1", "2", *rates, "--learning-rate", "1e-3"],
        ["--seeds", "1", "2", "--rmsprop-learning-rate", "1e-4"],
        [
            "--seeds",
            "1",
            "2",
            "--rmsprop-learning-rate",
            "nan",
            "--gc-learning-rate",
            "1",
        ],
    ):
        result = run(SCRIPT, str(tmp_path), *flags, cwd=tmp_path)
        assert result.returncode == 2, flags
        assert "Traceback" not in result.stderr

"""benchmarks/pairs_summary.py: the figures README quotes from a report."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import pairs_summary  # noqa: E402


def arm(losses, test_accuracy, epoch_times):
    return {
        "history": {"loss": losses, "accuracy": [0.5] * len(losses)},
        "epoch_times": epoch_times,
        "training_time": sum(epoch_times[1:]),
        "test": {"loss": 0.6, "accuracy": test_accuracy},
        "initial_weights": "0" * 16,
    }


def report(gc_losses):
    runs = [
        {
            "seed": 1337 + k,
            "arms": {
                "rmsprop": arm([0.7, 0.6, 0.5], 0.7 + k / 100, [9.0, 2.0, 4.0]),
                "gc_rmsprop": arm(gc_losses, 0.75 + k / 50, [9.0, 3.0, 3.0]),
            },
        }
        for k in range(3)
    ]
    summary = {
        "difference": {
            "test_accuracy": {"mean": 0.07, "ci95": [0.01, 0.13]},
            "test_loss": {"mean": 0.0, "ci95": [-0.1, 0.1]},
        },
        "verdict": {
            "test_accuracy": "better",
            "test_loss": "no significant difference",
        },
    }
    return {"config": {}, "runs": runs, "summary": summary}


def run(tmp_path, capsys, data, *flags):
    """Runs the script's main in this process; returns what it printed."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    pairs_summary.main([str(path), *flags])
    return capsys.readouterr().out


def test_epoch_where_gc_reaches_the_final_plain_loss(tmp_path, capsys):
    out = run(tmp_path, capsys, report([0.65, 0.5, 0.45]))
    assert "Pair 1 (seed 1337):" in out
    assert "GC minus plain RMSprop, over 3 pairs of runs:" in out
    assert "test_accuracy: +0.07, 95% CI [+0.01, +0.13]: GC better" in out
    assert "reaches RMSprop's final 0.5000 at epoch 2" in out
    # Warm epochs only: the first (9 s) is left out.
    assert "Not using Gradient Centralization, warm epoch: 3.0 s" in out


def test_never_reaching_is_said(tmp_path, capsys):
    out = run(tmp_path, capsys, report([0.7, 0.65, 0.55]))
    assert "reaches RMSprop's final 0.5000 in no epoch" in out


def test_plot_of_the_first_pair_and_a_bad_report(tmp_path, capsys):
    plot = tmp_path / "c.png"
    run(tmp_path, capsys, report([0.7, 0.6, 0.5]), "--plot-first", str(plot))
    assert plot.stat().st_size > 10_000
    with pytest.raises(SystemExit) as stopped:
        pairs_summary.main([str(tmp_path / "missing.json")])
    assert stopped.value.code == 2
    assert "cannot read" in capsys.readouterr().err

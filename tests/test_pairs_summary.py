"""benchmarks/tools/pairs_summary.py: reports combined, and the figures README
quotes from them."""

import glob
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "tools"))

import gradient_centralization as gc  # noqa: E402
import pairs_summary  # noqa: E402


def arm(losses, test_accuracy, epoch_times, test_auc=0.8):
    return {
        "history": {"loss": losses, "accuracy": [0.5] * len(losses)},
        "epoch_times": epoch_times,
        "training_time": sum(epoch_times[1:]),
        "test": {"loss": 0.6, "accuracy": test_accuracy, "auc": test_auc},
        "initial_weights": "0" * 16,
    }


def pair(k, gc_losses):
    return {
        "seed": 1337 + k,
        "arms": {
            "rmsprop": arm([0.7, 0.6, 0.5], 0.7 + k / 100, [9.0, 2.0, 4.0]),
            "gc_rmsprop": arm(gc_losses, 0.75 + k / 50, [9.0, 3.0, 3.0], 0.8 + k / 20),
        },
    }


def report(runs, learning_rate=1e-4):
    config = {"epochs": 3, "learning_rate": learning_rate, "mock_data": None}
    config.update(seed=runs[0]["seed"], runs=len(runs), json="r.json", plot=None)
    produced = {"date": "2026-12-04T00:00:00Z", "keras": "3.15.1"}
    return {"config": config, "produced": produced, "runs": runs, "summary": {}}


def write(tmp_path, *reports):
    paths = []
    for number, data in enumerate(reports):
        paths.append(tmp_path / f"report_{number}.json")
        paths[-1].write_text(json.dumps(data))
    return [str(path) for path in paths]


def run(tmp_path, capsys, reports, *flags):
    """Runs the script's main in this process; returns what it printed."""
    pairs_summary.main([*write(tmp_path, *reports), *flags])
    return capsys.readouterr().out


def test_epoch_where_gc_reaches_the_final_plain_loss(tmp_path, capsys):
    runs = [pair(k, [0.65, 0.5, 0.45]) for k in range(3)]
    out = run(tmp_path, capsys, [report(runs)])
    assert "Pair 1 (seed 1337):" in out
    assert "GC minus plain RMSprop, over 3 pairs of runs:" in out
    # GC - plain test accuracy: 0.05, 0.06, 0.07; AUC: 0, 0.05, 0.1.
    assert "test_accuracy: +0.06, 95% CI [+0.03516, +0.08484]: GC better" in out
    assert "test_auc: +0.05, 95% CI [-0.07421, +0.1742]: no significant" in out
    assert "reaches RMSprop's final 0.5000 at epoch 2" in out
    # Warm epochs only: the first (9 s) is left out.
    assert "Not using Gradient Centralization, warm epoch: 3.0 s" in out
    # RMSprop's warm epochs take 6 s, GC's 6 s in every pair.
    assert "RMSprop / GC over single pairs: from 1.000 to 1.000" in out


def test_one_pair_per_file_combines_as_one_run_of_all(tmp_path, capsys):
    runs = [pair(k, [0.65, 0.5, 0.45]) for k in range(3)]
    runs[1]["arms"]["rmsprop"]["training_time"] = 8.0  # A ratio of 8 / 6.
    # Files in another order than their seeds; the summary is recomputed.
    files = [report([runs[2]]), report([runs[0]]), report([runs[1]])]
    combined = tmp_path / "combined.json"
    out = run(tmp_path, capsys, files, "--json", str(combined))
    assert "Pair 1 (seed 1337):" in out
    assert "from 1.000 to 1.333 (mean 1.111)" in out
    written = json.loads(combined.read_text())
    assert [r["seed"] for r in written["runs"]] == [1337, 1338, 1339]
    assert written["summary"] == json.loads(json.dumps(gc.summarize(runs)))
    assert written["config"]["seed"] == 1337 and written["config"]["runs"] == 3
    assert [s["produced"]["keras"] for s in written["sources"]] == ["3.15.1"] * 3
    assert len({s["file"] for s in written["sources"]}) == 3


def test_a_diverged_run_makes_the_verdict_undefined(tmp_path, capsys):
    runs = [pair(k, [0.65, 0.5, 0.45]) for k in range(2)]
    runs[1]["arms"]["gc_rmsprop"]["test"]["loss"] = None  # How the example writes NaN.
    combined = tmp_path / "combined.json"
    out = run(tmp_path, capsys, [report(runs)], "--json", str(combined))
    assert "test_loss: +nan, 95% CI [+nan, +nan]: undefined" in out
    written = json.loads(combined.read_text())  # Strict JSON again.
    assert written["runs"][1]["arms"]["gc_rmsprop"]["test"]["loss"] is None


@pytest.mark.parametrize("problem", ["other learning rate", "seed twice"])
def test_reports_that_do_not_belong_together_are_refused(tmp_path, capsys, problem):
    first = report([pair(0, [0.6, 0.5, 0.4])])
    if problem == "seed twice":
        second = report([pair(0, [0.6, 0.5, 0.4])])
    else:
        second = report([pair(1, [0.6, 0.5, 0.4])], learning_rate=1e-3)
    with pytest.raises(SystemExit) as stopped:
        pairs_summary.main(write(tmp_path, first, second))
    assert stopped.value.code == 2
    assert "cannot combine the reports" in capsys.readouterr().err


def test_reports_without_test_auc_are_summarized_without_it(tmp_path, capsys):
    runs = [pair(k, [0.65, 0.5, 0.45]) for k in range(2)]
    for one_pair in runs:
        del one_pair["arms"]["rmsprop"]["test"]["auc"]
    out = run(tmp_path, capsys, [report(runs)])
    assert "test_accuracy: " in out and "test_auc" not in out


def test_never_reaching_is_said(tmp_path, capsys):
    out = run(tmp_path, capsys, [report([pair(0, [0.7, 0.65, 0.55])])])
    assert "reaches RMSprop's final 0.5000 in no epoch" in out


def test_plots_and_a_bad_report(tmp_path, capsys):
    first, every = tmp_path / "first.png", tmp_path / "all.png"
    runs = [pair(k, [0.7, 0.6, 0.5]) for k in range(2)]
    flags = ("--plot-first", str(first), "--plot", str(every))
    run(tmp_path, capsys, [report(runs)], *flags)
    assert first.stat().st_size > 10_000 and every.stat().st_size > 10_000
    with pytest.raises(SystemExit) as stopped:
        pairs_summary.main([str(tmp_path / "missing.json")])
    assert stopped.value.code == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("setting", ["lr_1e-4", "lr_1e-3", "best"])
def test_committed_summary_and_readme_quotes_follow_from_the_pair_files(
    setting, capsys
):
    """The committed summary is what pairs_summary prints from the committed pair
    files, and README quotes its intervals and verdicts as printed."""
    folder = os.path.join(ROOT, "benchmarks", "results", "real_pairs_auc_tensorflow")
    seed_files = sorted(glob.glob(os.path.join(folder, setting, "seed_*.json")))
    assert len(seed_files) >= 10
    pairs_summary.main(seed_files)
    printed = capsys.readouterr().out
    with open(os.path.join(folder, f"{setting}_summary.txt")) as file:
        assert printed == file.read()
    with open(os.path.join(ROOT, "README.md")) as file:
        readme = file.read()
    intervals = [line for line in printed.splitlines() if "95% CI" in line]
    assert len(intervals) == 3
    for line in intervals:
        assert line in readme

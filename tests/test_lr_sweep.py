"""benchmarks/tools/lr_sweep.py: each optimizer's figures per learning rate, its
pick, and the paired comparisons, on hand-made reports."""

import json
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "tools"))

import lr_sweep  # noqa: E402


def arm(auc, accuracy, loss):
    return {
        "history": {"loss": [0.7, loss], "accuracy": [0.5, 0.6]},
        "epoch_times": [9.0, 3.0],
        "training_time": 3.0,
        "test": {"loss": 0.6, "accuracy": accuracy, "auc": auc},
        "initial_weights": "0" * 16,
    }


# Test AUC by learning rate, seed 1337 and 1338: (RMSprop, GC).
AUC = {
    1e-4: [(0.80, 0.81), (0.84, 0.83)],
    1e-3: [(0.86, 0.90), (0.82, 0.92)],
    1e-2: [(0.70, float("nan")), (0.60, 0.88)],
}


def write_setting(folder, rate):
    folder.mkdir()
    for k, (plain, gc) in enumerate(AUC[rate]):
        seed = 1337 + k
        config = {"epochs": 2, "learning_rate": rate, "mock_data": None}
        config.update(seed=seed, runs=1, json=f"seed_{seed}.json", plot=None)
        runs = [
            {
                "seed": seed,
                "arms": {
                    "rmsprop": arm(plain, 0.6, 0.5),
                    "gc_rmsprop": arm(gc, 0.7, 0.4),
                },
            }
        ]
        report = {"config": config, "produced": {}, "runs": runs, "summary": {}}
        # The example writes a diverged value as null.
        text = json.dumps(report).replace("NaN", "null")
        (folder / f"seed_{seed}.json").write_text(text)
    return str(folder)


def test_figures_picks_and_comparisons(tmp_path, capsys):
    folders = [write_setting(tmp_path / f"lr_{r:g}", r) for r in AUC]
    plot = tmp_path / "sweep.png"
    lr_sweep.main(
        [*folders, "--json", str(tmp_path / "sweep.json"), "--plot", str(plot)]
    )
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "sweep.json").read_text())
    plain, gc = result["table"]["rmsprop"], result["table"]["gc_rmsprop"]
    assert plain["0.0001"]["test_auc"]["mean"] == pytest.approx(0.82)
    # GC's diverged run at 1e-2 is counted and left out of the means.
    assert gc["0.01"]["diverged"] == 1 and gc["0.01"]["pairs"] == 2
    assert gc["0.01"]["test_auc"]["mean"] == pytest.approx(0.88)
    # RMSprop's best mean AUC is at 1e-3 (0.84); GC's at 1e-3 (0.91), not 1e-2.
    assert result["picks"]["rmsprop"] == {"learning_rate": 1e-3, "at_edge": False}
    assert result["picks"]["gc_rmsprop"] == {"learning_rate": 1e-3, "at_edge": False}
    # GC at 1e-3 minus RMSprop at 1e-3, by seed: +0.04 and +0.10.
    both = result["comparisons"]["gc_rmsprop at 0.001 - rmsprop at 0.001"]["test_auc"]
    assert both["mean"] == pytest.approx(0.07) and both["seeds"] == [1337, 1338]
    half_width = 12.706 * 0.03  # t(0.975, 1) times the standard error.
    assert both["ci95"] == pytest.approx(
        [0.07 - half_width, 0.07 + half_width], abs=1e-3
    )
    # RMSprop at its pick minus at the defaults: +0.06 and -0.02.
    plain_gain = result["comparisons"]["rmsprop at 0.001 - rmsprop at 0.0001"]
    assert plain_gain["test_auc"]["mean"] == pytest.approx(0.02)
    assert "  pick by mean test AUC: 0.001" in out
    assert "lr 0.01: 2 pairs, 1 diverged;" in out
    assert plot.stat().st_size > 0


def test_a_pick_at_the_edge_is_flagged(tmp_path):
    folders = [write_setting(tmp_path / f"lr_{r:g}", r) for r in (1e-4, 1e-3)]
    result = lr_sweep.sweep(folders)
    assert result["picks"]["rmsprop"]["at_edge"]
    assert math.isclose(result["picks"]["rmsprop"]["learning_rate"], 1e-3)


def test_an_empty_folder_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        lr_sweep.main([str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert "no seed_*.json report" in capsys.readouterr().err


SWEEP = os.path.join(ROOT, "benchmarks", "results", "real_pairs_auc_tensorflow")


def test_committed_sweep_summary_and_readme_quotes_follow_from_the_pair_files(capsys):
    """The committed summary is what lr_sweep.py prints from the committed seed
    files of the settings it lists, and README quotes its picks' comparison."""
    with open(os.path.join(SWEEP, "lr_sweep.json")) as file:
        committed = json.load(file)
    folders = [os.path.join(ROOT, folder) for folder in committed["settings"].values()]
    lr_sweep.main(folders)
    printed = capsys.readouterr().out
    with open(os.path.join(SWEEP, "lr_sweep_summary.txt")) as file:
        assert printed == file.read()
    lines = printed.splitlines()
    picks = committed["picks"]
    name = "gc_rmsprop at {:g} - rmsprop at {:g}, paired by seed:".format(
        picks["gc_rmsprop"]["learning_rate"], picks["rmsprop"]["learning_rate"]
    )
    start = lines.index(name)
    with open(os.path.join(ROOT, "README.md")) as file:
        readme = file.read()
    assert "\n".join(lines[start : start + 4]) in readme

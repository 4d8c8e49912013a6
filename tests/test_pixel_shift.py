"""benchmarks/experiments/pixel_shift.py: the splits' pixel statistics, and the
example's model scored on each split as it is and matched to the other's."""

import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "experiments"))

import pixel_shift  # noqa: E402

SETS = ["test as is", "test matched to train", "train as is", "train matched to test"]


def test_the_script_runs_as_documented(run_benchmark, tmp_path):
    flags = ["--seeds", "3", "--epochs", "1", "--mock-data", "12", "--json", "p.json"]
    result = run_benchmark("experiments/pixel_shift.py", *flags)
    assert "test matched to train" in result.stdout
    report = json.loads((tmp_path / "p.json").read_text())  # run_benchmark's cwd.
    assert set(report) == {"produced", "args", "statistics", "maps", "runs"}
    produced = report["produced"]
    assert {"date", "commit", "keras", "tensorflow", "command"} <= set(produced)
    assert produced["command"] == "python benchmarks/experiments/pixel_shift.py " + (
        " ".join(flags)
    )
    assert report["args"]["json"] == "p.json"
    check_statistics(report["statistics"], 12)
    check_scores(report["runs"])


def check_statistics(stats, n):
    for split in ("train", "test"):
        whole, horses, humans = (
            stats[f"{split}{c}"] for c in ("", " horses", " humans")
        )
        assert whole["n"] == horses["n"] + humans["n"] == n
        # The split's mean is its classes' means, weighted by their sizes.
        weighted = (horses["n"] * horses["mean"] + humans["n"] * humans["mean"]) / n
        assert whole["mean"] == pytest.approx(weighted)
        for figures in (whole, horses, humans):
            assert 0 <= figures["mean"] <= 255 and 0 <= figures["std"] <= 128
            assert figures["mean"] == pytest.approx(
                np.mean(figures["mean_per_channel"])
            )
            assert 0 <= figures["share_white"] <= 1
    for source, target in (("test", "train"), ("train", "test")):
        matched = stats[f"{source} matched to {target}"]
        assert matched["n"] == stats[source]["n"]
        for key in ("mean_per_channel", "std_per_channel"):
            assert matched[key] == pytest.approx(stats[target][key], abs=1.0)


def check_scores(runs):
    (run,) = runs
    assert run["seed"] == 3 and run["committed_test"] is None  # Mock data.
    assert list(run["scores"]) == SETS
    as_is = run["scores"]["test as is"]
    # The example's own test figures of that model: evaluate() runs in inference mode.
    assert as_is["accuracy"] == pytest.approx(run["test_record"]["accuracy"])
    assert as_is["auc"] == pytest.approx(run["test_record"]["auc"], abs=1e-6)
    for figures in run["scores"].values():
        for key in ("mean_output", "share_above_0.5", "accuracy", "auc"):
            assert 0 <= figures[key] <= 1


def test_matching_moves_a_split_onto_the_other_statistics():
    rng = np.random.default_rng(0)
    # Dark, flat pictures matched to bright, contrasted ones, per channel.
    source = rng.normal([50, 60, 70], [8, 10, 12], (6, 30, 30, 3)).round()
    target = rng.normal([170, 150, 130], [25, 20, 15], (4, 30, 30, 3)).round()
    source, target = source.astype(np.uint8), target.astype(np.uint8)
    source_stats = pixel_shift.pixel_stats(source)
    target_stats = pixel_shift.pixel_stats(target)
    matched, affine = pixel_shift.match(source, source_stats, target_stats)
    assert matched.dtype == np.uint8 and matched.shape == source.shape
    got = pixel_shift.pixel_stats(matched)
    for key in ("mean_per_channel", "std_per_channel"):
        assert got[key] == pytest.approx(target_stats[key], abs=0.3)
        assert not np.allclose(got[key], source_stats[key], atol=3)
    # One map for the whole split: every picture moved by the same affine map.
    expected = source * np.array(affine["scale"]) + np.array(affine["shift"])
    assert np.abs(matched - expected).max() <= 0.5 + 1e-9


def test_pixel_statistics_are_those_of_the_bytes():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[0] = 255  # One white picture, one black one.
    images[1, ..., 0] = 10
    stats = pixel_shift.pixel_stats(images)
    assert stats["n"] == 2
    assert stats["mean_per_channel"] == pytest.approx([132.5, 127.5, 127.5])
    assert stats["std_per_channel"] == pytest.approx([122.5, 127.5, 127.5])
    assert stats["mean"] == pytest.approx(images.mean())
    assert stats["std"] == pytest.approx(images.std())
    assert stats["share_white"] == pytest.approx(0.5)


def test_scores_are_those_of_the_outputs():
    class Model:
        def predict(self, images, batch_size, verbose):
            return np.array([[0.2], [0.6], [0.7], [0.4], [0.9]])

    labels = np.array([0, 0, 1, 1, 1])
    figures = pixel_shift.scores(Model(), None, labels, batch_size=5)
    assert figures["mean_output"] == pytest.approx(0.56)
    assert figures["mean_output_horses"] == pytest.approx(0.4)
    assert figures["mean_output_humans"] == pytest.approx(2.0 / 3)
    assert figures["share_above_0.5"] == pytest.approx(0.6)
    assert figures["accuracy"] == pytest.approx(0.6)
    # 5 of the 6 (human, horse) pairs are ranked right.
    assert figures["auc"] == pytest.approx(5 / 6, abs=0.01)

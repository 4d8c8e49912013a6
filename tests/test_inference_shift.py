"""benchmarks/experiments/inference_shift.py: the example's outputs scored with its
augmentation and its dropout each on or off."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "experiments"))

import inference_shift  # noqa: E402

MODES = ["inference", "augmentation only", "dropout only", "training mode"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("shift") / "shift.json"
    flags = ["--seeds", "3", "--epochs", "1", "--mock-data", "16", "--json", str(path)]
    inference_shift.main(flags)
    return json.loads(path.read_text())


def test_inference_mode_is_what_the_example_scores(report):
    (run,) = report["runs"]
    assert run["seed"] == 3
    inference = run["test split"]["inference"]
    # The example's own test figures of that model: evaluate() runs in inference mode.
    assert inference["accuracy"] == pytest.approx(run["test_record"]["accuracy"])
    assert inference["auc"] == pytest.approx(run["test_record"]["auc"], abs=1e-6)


def test_each_mode_switches_its_own_part(report):
    for split in ("training pictures", "test split"):
        figures = report["runs"][0][split]
        assert list(figures) == MODES
        outputs = {mode: figures[mode]["mean_output_horses"] for mode in MODES}
        # Every random part, switched on, changes the outputs; each differently.
        assert len(set(outputs.values())) == 4
        for values in figures.values():
            assert 0 <= values["share_predicted_human"] <= 1
            assert 0 <= values["auc"] <= 1


def test_figures_are_those_of_the_outputs(monkeypatch):
    labels = np.array([0, 0, 1, 1, 1])
    outputs = np.array([0.2, 0.6, 0.7, 0.4, 0.9])
    monkeypatch.setattr(inference_shift, "predict", lambda *args: outputs)
    batches = tf.data.Dataset.from_tensor_slices((np.zeros((5, 1)), labels))
    figures = inference_shift.scores(None, batches, 5, seed=0)["inference"]
    assert figures["mean_output_horses"] == pytest.approx(0.4)
    assert figures["mean_output_humans"] == pytest.approx(2.0 / 3)
    assert figures["share_predicted_human"] == pytest.approx(0.6)
    assert figures["accuracy"] == pytest.approx(0.6)
    # 5 of the 6 (human, horse) pairs are ranked right.
    assert figures["auc"] == pytest.approx(5 / 6, abs=0.01)


def test_provenance_is_recorded(report):
    assert set(report) == {"produced", "args", "runs"}
    assert {"date", "commit", "keras"} <= set(report["produced"])

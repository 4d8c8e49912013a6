"""The example script: data pipeline, command line, report, statistics and plot."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import requests
import tensorflow as tf

import gradient_centralization as gc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gradient_centralization.py")
ARM_KEYS = ("rmsprop", "gc_rmsprop")


def run_script(*args, cwd):
    return subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """One offline run of the whole script: 2 paired runs of 2 epochs each."""
    folder = tmp_path_factory.mktemp("report")
    result = run_script(
        "--mock-data", "24", "--epochs", "2", "--batch-size", "8", "--runs", "2",
        "--json", "report.json", "--plot", "curves.png", cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    with open(folder / "report.json") as file:
        return result, json.load(file), folder


def test_report_schema(report_run):
    _, report, _ = report_run
    assert {"config", "runs", "summary"} <= set(report)
    assert report["config"]["epochs"] == 2 and report["config"]["batch_size"] == 8
    assert report["config"]["mock_data"] == 24 and report["config"]["seed"] == 1337
    assert report["config"]["learning_rate"] == pytest.approx(1e-4)
    assert [run["seed"] for run in report["runs"]] == [1337, 1338]
    for run in report["runs"]:
        assert set(run["arms"]) == set(ARM_KEYS)
        for arm in run["arms"].values():
            assert len(arm["history"]["loss"]) == len(arm["history"]["accuracy"]) == 2
            assert len(arm["epoch_times"]) == 2
            assert arm["training_time"] == pytest.approx(sum(arm["epoch_times"]))
            assert set(arm["test"]) == {"loss", "accuracy"}
            assert all(isinstance(v, float) for v in arm["test"].values())


def test_arms_start_equal_and_train_differently(report_run):
    _, report, _ = report_run
    for run in report["runs"]:
        plain, centralized = (run["arms"][key] for key in ARM_KEYS)
        assert plain["initial_weights"] == centralized["initial_weights"]
        assert plain["history"]["loss"] != centralized["history"]["loss"]
    first, second = report["runs"]
    assert first["arms"]["rmsprop"]["initial_weights"] != second["arms"]["rmsprop"]["initial_weights"]


def test_summary_schema(report_run):
    _, report, _ = report_run
    summary = report["summary"]
    for key in ARM_KEYS:
        assert set(summary[key]) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "training_time"}
        for stat in summary[key].values():
            assert isinstance(stat["mean"], float) and isinstance(stat["std"], float)
    for name in ("test_accuracy", "test_loss"):
        difference = summary["difference"][name]
        low, high = difference["ci95"]
        assert low <= difference["mean"] <= high
        assert summary["verdict"][name] in ("better", "worse", "no significant difference")


def test_printed_comparison(report_run):
    result, _, _ = report_run
    out = result.stdout
    assert "Total params: 1,704,097" in out
    assert out.count("Total params") == 1
    assert "run 2/2 · GCRMSprop" in out and "run 1/2 · RMSprop" in out
    assert "Not using Gradient Centralization" in out and "Using Gradient Centralization" in out
    for label in ("Training loss", "Training accuracy", "Test loss", "Test accuracy", "Training time (s)", "Mean epoch time (s)"):
        assert label in out
    assert "95% CI" in out


def test_plot_is_a_png(report_run):
    _, _, folder = report_run
    data = (folder / "curves.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_same_seed_same_numbers(report_run, tmp_path):
    _, report, _ = report_run
    result = run_script(
        "--mock-data", "24", "--epochs", "2", "--batch-size", "8", "--json", "again.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    again = json.loads((tmp_path / "again.json").read_text())
    for key in ARM_KEYS:
        first, repeat = report["runs"][0]["arms"][key], again["runs"][0]["arms"][key]
        assert repeat["history"] == first["history"]
        assert repeat["test"] == first["test"]
    assert again["summary"]["verdict"] == {"test_accuracy": "single run", "test_loss": "single run"}
    assert "a single run supports no claim" in result.stdout


def test_mixed_precision_run(tmp_path):
    result = run_script(
        "--mock-data", "8", "--epochs", "1", "--batch-size", "4",
        "--dtype-policy", "mixed_bfloat16", "--json", "mixed.json", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads((tmp_path / "mixed.json").read_text())
    assert report["config"]["dtype_policy"] == "mixed_bfloat16"
    arms = report["runs"][0]["arms"]
    assert all(np.isfinite(arm["history"]["loss"]).all() for arm in arms.values())
    assert arms["rmsprop"]["history"]["loss"] != arms["gc_rmsprop"]["history"]["loss"]


# Two logical CPU devices, made before TensorFlow initializes them; a fresh
# process, since strategies created earlier in one process can clash in their
# collective ops.
TWO_CPUS = """
import sys
import tensorflow as tf
(cpu,) = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import gradient_centralization as gc
assert gc.make_strategy("auto").num_replicas_in_sync == 1
assert gc.make_strategy("mirrored").num_replicas_in_sync == 2
sys.exit(gc.main(sys.argv[2:]))
"""


@pytest.mark.skipif(gc.keras.backend.backend() != "tensorflow", reason="tf.distribute needs the TensorFlow backend")
def test_mirrored_strategy_on_two_cpus(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", TWO_CPUS, ROOT, "--mock-data", "8", "--epochs", "1",
         "--batch-size", "4", "--runs", "2", "--distribute", "mirrored", "--json", "r.json"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Training with MirroredStrategy on 2 device(s)" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert all(np.isfinite(arm["test"]["loss"]) for run in report["runs"] for arm in run["arms"].values())


# The data pipeline.


def fake_split(count=12, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 300, 300, 3), dtype=np.uint8)
    return tf.constant(images), tf.constant(np.arange(count, dtype="float32"))


def batches(ds, count):
    return [(x.numpy(), y.numpy()) for x, y in ds.take(count)]


def test_same_seed_same_augmented_batches():
    images, labels = fake_split()
    steps = gc.steps_per_epoch(labels, batch_size=5)
    assert steps == 3
    first = batches(gc.prepare_train(images, labels, batch_size=5, seed=7), 2 * steps)
    second = batches(gc.prepare_train(images, labels, batch_size=5, seed=7), 2 * steps)
    for (xa, ya), (xb, yb) in zip(first, second, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # Each epoch sees every example once, in a new order.
    epoch_labels = [np.concatenate([y for _, y in first[i : i + steps]]) for i in (0, steps)]
    for labels_seen in epoch_labels:
        np.testing.assert_array_equal(np.sort(labels_seen), np.arange(12))
    assert not np.array_equal(*epoch_labels)
    other = batches(gc.prepare_train(images, labels, batch_size=5, seed=8), 1)
    assert not np.array_equal(first[0][0], other[0][0])


def test_augmented_batches_are_rescaled_and_changed():
    images, labels = fake_split()
    ((x, y),) = gc.prepare_train(images, labels, batch_size=12, seed=0).take(1)
    assert x.shape == (12, 300, 300, 3) and x.dtype == tf.float32
    assert 0.0 <= x.numpy().min() and x.numpy().max() <= 1.0
    originals = images.numpy()[y.numpy().astype(int)] / 255.0
    assert not np.allclose(x.numpy(), originals, atol=0.05)


def test_augmentation_distribution():
    transforms = gc.augmentation_transforms(20_000, 300, 300, seed=[0, 1]).numpy()
    matrices = transforms[:, [0, 1, 3, 4]].reshape(-1, 2, 2)
    determinants = np.linalg.det(matrices)
    # Independent flips: a mirror image (one axis flipped) half of the time.
    # Keras 3's RandomFlip layer, flipping both axes or none, never mirrors.
    assert abs(np.mean(determinants < 0) - 0.5) < 0.02
    scales = np.sqrt(np.abs(determinants))
    assert 0.8 <= scales.min() < 0.81 and 1.19 < scales.max() <= 1.2
    # Every transform turns about the image centre.
    centre = np.array([149.5, 149.5])
    mapped = matrices @ centre + transforms[:, [2, 5]]
    np.testing.assert_allclose(mapped, np.broadcast_to(centre, mapped.shape), atol=1e-2)


def test_test_split_is_only_rescaled():
    images, labels = fake_split(4)
    ((x, _),) = gc.prepare_test(tf.data.Dataset.from_tensor_slices((images, labels)), batch_size=4)
    np.testing.assert_allclose(x.numpy(), images.numpy() / 255.0, rtol=1e-6)


# The command line.


@pytest.mark.parametrize(
    "argv",
    [
        ["--epochs", "0"],
        ["--batch-size", "-1"],
        ["--mock-data", "0"],
        ["--learning-rate", "0"],
        ["--learning-rate", "-1e-4"],
        ["--runs", "0"],
        ["--epochs", "ten"],
        ["--distribute", "everywhere"],
        ["--dtype-policy", "float64"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gc.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_import_prints_and_trains_nothing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import gradient_centralization"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""


def test_bad_argument_exits_2_without_traceback(tmp_path):
    result = run_script("--learning-rate", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "must be greater than 0" in result.stderr and "Traceback" not in result.stderr


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gc.parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--epochs", "--batch-size", "--learning-rate", "--seed", "--runs", "--data-dir", "--mock-data", "--distribute", "--dtype-policy", "--json", "--plot"):
        assert flag in out


def test_defaults_reproduce_the_original():
    args = gc.parse_args([])
    assert (args.epochs, args.batch_size, args.learning_rate, args.runs) == (10, 128, 1e-4, 1)
    assert args.mock_data is None and args.data_dir is None
    assert args.dtype_policy == "float32" and args.distribute == "auto"


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("Failed to resolve 'storage.googleapis.com'"),
        ModuleNotFoundError("No module named 'importlib_resources'"),
    ],
    ids=["offline", "missing-module"],
)
def test_unreachable_dataset_explains_and_exits_1(monkeypatch, capsys, tmp_path, error):
    calls = []

    def failing_load(**kwargs):
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(gc.tfds, "load", failing_load)
    assert gc.main(["--data-dir", str(tmp_path)]) == 1
    assert calls[0]["name"] == "horses_or_humans" and calls[0]["data_dir"] == str(tmp_path)
    err = capsys.readouterr().err
    assert type(error).__name__ in err and str(error) in err
    assert "154 MiB" in err and "--data-dir" in err and "--mock-data" in err
    assert "Traceback" not in err


# Statistics on hand-made numbers.


def test_interval_without_significance():
    difference = gc.paired_difference([0.02, 0.04, 0.06])
    assert difference["mean"] == pytest.approx(0.04)
    # t(0.975, 2) = 4.302653, standard error 0.0115470.
    assert difference["ci95"] == pytest.approx([-0.0096828, 0.0896828], abs=1e-6)
    assert gc.verdict(difference, higher_is_better=True) == "no significant difference"


def test_interval_with_significance():
    difference = gc.paired_difference([0.05, 0.06, 0.07, 0.05, 0.06, 0.07])
    # t(0.975, 5) = 2.570582, standard error 0.0036515.
    assert difference["ci95"] == pytest.approx([0.0506135, 0.0693865], abs=1e-6)
    assert gc.verdict(difference, higher_is_better=True) == "better"
    assert gc.verdict(difference, higher_is_better=False) == "worse"
    negative = gc.paired_difference([-0.05, -0.06, -0.07, -0.05, -0.06, -0.07])
    assert gc.verdict(negative, higher_is_better=False) == "better"


def test_single_run_supports_no_claim():
    difference = gc.paired_difference([0.1])
    assert difference == {"mean": pytest.approx(0.1), "ci95": None}
    assert gc.verdict(difference, higher_is_better=True) == "single run"
    assert gc.mean_std([0.5]) == {"mean": 0.5, "std": None}


def fake_record(loss, accuracy, test_accuracy):
    return {
        "history": {"loss": [1.0, loss], "accuracy": [0.5, accuracy]},
        "epoch_times": [2.0, 1.0],
        "training_time": 3.0,
        "test": {"loss": 1 - test_accuracy, "accuracy": test_accuracy},
    }


def test_summary_from_fake_runs(tmp_path):
    runs = [
        {"seed": s, "arms": {"rmsprop": fake_record(0.6, 0.7, a), "gc_rmsprop": fake_record(0.5, 0.8, a + d)}}
        for s, (a, d) in enumerate([(0.70, 0.05), (0.72, 0.06), (0.74, 0.07)])
    ]
    summary = gc.summarize(runs)
    assert summary["rmsprop"]["test_accuracy"]["mean"] == pytest.approx(0.72)
    assert summary["rmsprop"]["test_accuracy"]["std"] == pytest.approx(0.02)
    assert summary["gc_rmsprop"]["train_loss"] == {"mean": pytest.approx(0.5), "std": pytest.approx(0.0)}
    assert summary["difference"]["test_accuracy"]["mean"] == pytest.approx(0.06)
    assert summary["verdict"] == {"test_accuracy": "better", "test_loss": "better"}
    text = gc.format_summary(summary, 3)
    assert "GC better" in text and "95% CI" in text
    gc.plot_report({"runs": runs}, tmp_path / "fake.png")
    assert (tmp_path / "fake.png").read_bytes().startswith(b"\x89PNG")


# The model.


def test_model_is_the_original():
    model = gc.build_model()
    assert model.count_params() == gc.build_model(gc.keras.layers.Dropout).count_params() == 1_704_097
    assert [layer.rate for layer in model.layers if isinstance(layer, gc.keras.layers.Dropout)] == [0.5] * 3


def test_byte_dropout_keeps_half_and_scales_by_two():
    layer = gc.ByteDropout(0.5, seed=3)
    x = tf.ones((200, 100, 10))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.5) < 0.005
    np.testing.assert_array_equal(y.numpy()[kept], 2.0)
    # The gradient passes where the value was kept, scaled the same way.
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), 2.0 * kept)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    # Seeded like Keras' Dropout: the same seed gives the same masks.
    again = gc.ByteDropout(0.5, seed=3)(x, training=True).numpy()
    np.testing.assert_array_equal(again != 0, kept)


def test_byte_dropout_falls_back_for_other_rates():
    x = tf.ones((100, 100))
    y = gc.ByteDropout(0.3, seed=1)(x, training=True).numpy()
    assert abs((y != 0).mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)


def test_dataset_download_dependency_is_installed():
    # tensorflow-datasets imports it (undeclared) before downloading a dataset;
    # requirements.txt must install it, or the first real run fails.
    import importlib_resources.abc

    assert importlib_resources.abc.Traversable

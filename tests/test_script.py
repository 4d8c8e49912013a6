"""The example script: data pipeline, command line, report, statistics and plot."""

import ast
import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import requests

import gradient_centralization as gc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gradient_centralization.py")
ARM_KEYS = ("rmsprop", "gc_rmsprop")


def run_script(command_line, cwd):
    return subprocess.run(
        [sys.executable, SCRIPT, *command_line.split()],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """One offline run of the whole script: 2 paired runs of 2 epochs each."""
    folder = tmp_path_factory.mktemp("report")
    result = run_script(
        "--mock-data 24 --epochs 2 --batch-size 8 --runs 2 --json report.json --plot curves.png",
        cwd=folder,
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
    assert (
        first["arms"]["rmsprop"]["initial_weights"]
        != second["arms"]["rmsprop"]["initial_weights"]
    )


def test_summary_schema(report_run):
    _, report, _ = report_run
    summary = report["summary"]
    for key in ARM_KEYS:
        assert set(summary[key]) == {
            "train_loss",
            "train_accuracy",
            "test_loss",
            "test_accuracy",
            "training_time",
            "mean_epoch_time",
        }
        for stat in summary[key].values():
            assert isinstance(stat["mean"], float) and isinstance(stat["std"], float)
    for name in ("test_accuracy", "test_loss"):
        difference = summary["difference"][name]
        low, high = difference["ci95"]
        assert low <= difference["mean"] <= high
        assert summary["verdict"][name] in (
            "better",
            "worse",
            "no significant difference",
        )


def test_printed_comparison(report_run):
    result, _, _ = report_run
    out = result.stdout
    assert "Total params: 1,704,097" in out
    assert out.count("Total params") == 1
    assert "run 2/2 · GCRMSprop" in out and "run 1/2 · RMSprop" in out
    assert (
        "Not using Gradient Centralization" in out
        and "Using Gradient Centralization" in out
    )
    for label in (
        "Training loss",
        "Training accuracy",
        "Test loss",
        "Test accuracy",
        "Training time (s)",
        "Mean epoch time (s)",
    ):
        assert label in out
    assert "95% CI" in out


def test_plot_is_a_png(report_run):
    _, _, folder = report_run
    data = (folder / "curves.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_same_seed_same_numbers(report_run, tmp_path):
    _, report, _ = report_run
    result = run_script(
        "--mock-data 24 --epochs 2 --batch-size 8 --json again.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    again = json.loads((tmp_path / "again.json").read_text())
    for key in ARM_KEYS:
        first, repeat = report["runs"][0]["arms"][key], again["runs"][0]["arms"][key]
        assert repeat["history"] == first["history"]
        assert repeat["test"] == first["test"]
    assert again["summary"]["verdict"] == {
        "test_accuracy": "single run",
        "test_loss": "single run",
    }
    assert "a single run supports no claim" in result.stdout


def test_mixed_precision_run(tmp_path):
    result = run_script(
        "--mock-data 8 --epochs 1 --batch-size 4 --dtype-policy mixed_bfloat16 --json mixed.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads((tmp_path / "mixed.json").read_text())
    assert report["config"]["dtype_policy"] == "mixed_bfloat16"
    arms = report["runs"][0]["arms"]
    assert all(np.isfinite(arm["history"]["loss"]).all() for arm in arms.values())
    assert arms["rmsprop"]["history"]["loss"] != arms["gc_rmsprop"]["history"]["loss"]


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
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""


def test_bad_argument_exits_2_without_traceback(tmp_path):
    result = run_script("--learning-rate 0", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "must be greater than 0" in result.stderr and "Traceback" not in result.stderr
    )


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gc.parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--seed",
        "--runs",
        "--data-dir",
        "--mock-data",
        "--dtype-policy",
        "--json",
        "--plot",
    ):
        assert flag in out


def test_defaults_reproduce_the_original():
    args = gc.parse_args([])
    assert (args.epochs, args.batch_size, args.learning_rate, args.runs) == (
        10,
        128,
        1e-4,
        1,
    )
    assert args.mock_data is None and args.data_dir is None
    assert args.dtype_policy == "float32" and args.json is None and args.plot is None


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError(
            "Failed to resolve 'storage.googleapis.com'"
        ),
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
    assert calls[0]["name"] == "horses_or_humans" and calls[0]["data_dir"] == str(
        tmp_path
    )
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
        {
            "seed": s,
            "arms": {
                "rmsprop": fake_record(0.6, 0.7, a),
                "gc_rmsprop": fake_record(0.5, 0.8, a + d),
            },
        }
        for s, (a, d) in enumerate([(0.70, 0.05), (0.72, 0.06), (0.74, 0.07)])
    ]
    summary = gc.summarize(runs)
    assert summary["rmsprop"]["test_accuracy"]["mean"] == pytest.approx(0.72)
    assert summary["rmsprop"]["test_accuracy"]["std"] == pytest.approx(0.02)
    assert summary["gc_rmsprop"]["train_loss"] == {
        "mean": pytest.approx(0.5),
        "std": pytest.approx(0.0),
    }
    assert summary["difference"]["test_accuracy"]["mean"] == pytest.approx(0.06)
    assert summary["verdict"] == {"test_accuracy": "better", "test_loss": "better"}
    text = gc.format_summary(summary, 3)
    assert "GC better" in text and "95% CI" in text
    figure = gc.plot_report({"runs": runs})
    figure.savefig(tmp_path / "fake.png")
    assert (tmp_path / "fake.png").read_bytes().startswith(b"\x89PNG")
    lines = [axis.get_lines() for axis in figure.axes]
    assert [len(axis_lines) for axis_lines in lines] == [2, 2]  # One line per arm.
    np.testing.assert_allclose(lines[0][1].get_ydata(), [1.0, 0.5])  # GC's mean loss.


def test_dataset_download_dependency_is_installed():
    # tensorflow-datasets imports it (undeclared) before downloading a dataset;
    # requirements.txt must install it, or the first real run fails.
    import importlib_resources.abc

    assert importlib_resources.abc.Traversable


# The model and the augmentation inside it.

ORIGINAL_LAYERS = [
    "Conv2D",
    "MaxPooling2D",
    "Conv2D",
    "Dropout",
    "MaxPooling2D",
    "Conv2D",
    "Dropout",
    "MaxPooling2D",
    "Conv2D",
    "MaxPooling2D",
    "Conv2D",
    "MaxPooling2D",
    "Flatten",
    "Dropout",
    "Dense",
    "Dense",
]


def test_model_is_the_original():
    model = gc.build_model()
    assert [type(layer).__name__ for layer in model.layers] == ORIGINAL_LAYERS
    assert [
        layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"
    ] == [0.5] * 3
    assert model.count_params() == 1_704_097
    # Rescaling and augmentation add no weights: the trained model is that CNN.
    training_model = gc.build_training_model()
    assert [type(layer).__name__ for layer in training_model.layers] == [
        "Rescaling",
        "RandomFlipRotateZoom",
        "Sequential",
    ]
    assert training_model.count_params() == 1_704_097


def test_no_private_or_tensorflow_only_code_in_the_example():
    source = open(SCRIPT).read()
    for forbidden in ("raw_ops", "custom_gradient", "ByteDropout", "keras.src"):
        assert forbidden not in source
    private = [
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.endswith("__")
    ]
    assert private == []


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_runs_on_other_backends(tmp_path, backend):
    if importlib.util.find_spec(backend) is None and not os.environ.get("CI"):
        pytest.skip(f"{backend} is not installed")
    result = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            *"--mock-data 8 --epochs 1 --batch-size 4 --json r.json".split(),
        ],
        cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = strict_json((tmp_path / "r.json").read_text())
    assert report["config"]["backend"] == backend
    plain, centralized = (report["runs"][0]["arms"][key] for key in ARM_KEYS)
    assert plain["initial_weights"] == centralized["initial_weights"]
    assert plain["history"]["loss"] != centralized["history"]["loss"]


def random_images(count, size=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, size, size, 3)).astype("float32")


def augment(images, seed, **factors):
    gc.keras.utils.set_random_seed(seed)
    layer = gc.RandomFlipRotateZoom(**factors)
    return gc.keras.ops.convert_to_numpy(layer(images, training=True))


def test_flip_is_one_coin_for_both_axes():
    # As Keras 3's RandomFlip("horizontal_and_vertical"): an image is left alone or
    # flipped along both axes (turned 180 degrees), never along one axis only.
    images = random_images(400)
    flipped = augment(images, 0, rotation_factor=0.0, zoom_factor=0.0)
    same = [np.allclose(a, b, atol=1e-3) for a, b in zip(flipped, images)]
    turned = [np.allclose(a, b[::-1, ::-1], atol=1e-3) for a, b in zip(flipped, images)]
    assert all(s != t for s, t in zip(same, turned))
    assert 0.4 < np.mean(turned) < 0.6


def test_rotation_and_zoom_follow_the_original_factors():
    # A bright dot 10 pixels right of the centre of a 101x101 image moves to
    # 10 / scale pixels from the centre, at an angle. (Far enough from the borders
    # that no reflected copy of it shows.)
    images = np.zeros((300, 101, 101, 1), "float32")
    images[:, 50, 60] = 1.0
    out = augment(images, 1, rotation_factor=0.3, zoom_factor=0.2)
    rows, cols = np.unravel_index(out.reshape(len(out), -1).argmax(axis=1), (101, 101))
    radius = np.hypot(rows - 50, cols - 50)
    # Zoom of up to 20% either way: scale in [0.8, 1.2] (the nearest pixel: +-1).
    assert radius.min() >= 10 / 1.2 - 1 and radius.max() <= 10 / 0.8 + 1
    assert radius.min() < 10 / 1.1 and radius.max() > 10 / 0.9
    angles = np.degrees(np.arctan2(rows - 50, cols - 50))
    # Rotations of up to 0.3 turn (108 degrees) either way, and half of the images
    # turned 180 degrees by the flip: directions beyond 108 degrees occur too.
    assert np.abs(angles).max() > 150 and np.abs(angles).min() < 20


def test_augmentation_is_seeded_and_only_in_training():
    images = random_images(8)
    first, again, other = augment(images, 3), augment(images, 3), augment(images, 4)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    layer = gc.RandomFlipRotateZoom()
    np.testing.assert_array_equal(gc.keras.ops.convert_to_numpy(layer(images)), images)


def test_augmentation_runs_inside_the_fitted_model(monkeypatch):
    """The pipeline hands the model cached uint8 images as they are; rescaling and
    augmentation happen in the model's own training step, on the training device."""
    calls = []
    original_call = gc.RandomFlipRotateZoom.call

    def recording_call(self, images, training=False):
        calls.append((training, gc.keras.backend.standardize_dtype(images.dtype)))
        return original_call(self, images, training=training)

    monkeypatch.setattr(gc.RandomFlipRotateZoom, "call", recording_call)
    (train_ds, test_ds), _ = gc.load_data(mock_examples=4)
    assert train_ds.element_spec[0].dtype.name == "uint8"
    config = {"batch_size": 4, "learning_rate": 1e-4, "epochs": 1}
    record = gc.train_arm(gc.RMSprop, (train_ds, test_ds), config, seed=0)
    assert (True, "float32") in calls  # Traced into the train step, on rescaled images.
    assert np.isfinite(record["test"]["loss"])


def test_both_arms_get_the_same_start_and_augmentation():
    images = random_images(4, size=300).astype("uint8")
    outputs, weights = [], []
    for _ in range(2):
        gc.keras.utils.set_random_seed(5)
        model = gc.build_training_model()
        weights.append(model.get_weights())
        augmented = model.layers[1](model.layers[0](images), training=True)
        outputs.append(gc.keras.ops.convert_to_numpy(augmented))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


# A report that survives divergence, interruption and bad paths.


def strict_json(text):
    def reject(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def test_diverging_run_writes_strict_json_and_undefined_verdict(tmp_path):
    result = run_script(
        "--mock-data 8 --epochs 1 --batch-size 4 --runs 2 --learning-rate 1e37 --json r.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = strict_json((tmp_path / "r.json").read_text())
    losses = [
        arm["test"]["loss"] for run in report["runs"] for arm in run["arms"].values()
    ]
    assert None in losses  # NaN written as null.
    assert report["summary"]["verdict"]["test_loss"] == "undefined"
    assert "undefined: a run diverged" in result.stdout
    assert "no significant difference" not in result.stdout.split("test_loss, GC")[1]
    # The tables stay aligned whatever the values.
    tables = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(("Training loss", "Test loss"))
    ]
    assert len({len(line) for line in tables}) == 1


def test_table_columns_stay_aligned_for_any_value():
    record = fake_record(1.5e37, float("nan"), float("inf"))
    lines = gc.format_run(
        {"rmsprop": record, "gc_rmsprop": fake_record(0.1, 0.2, 0.3)}
    ).splitlines()
    assert len({len(line) for line in lines}) == 1


def test_interrupted_run_keeps_finished_pairs(monkeypatch, tmp_path, capsys):
    pairs = []

    def train_pair(data, config, seed, header):
        if pairs:
            raise KeyboardInterrupt
        pairs.append(seed)
        return {key: fake_record(0.5, 0.7, 0.6) for key in ARM_KEYS}

    monkeypatch.setattr(gc, "train_pair", train_pair)
    monkeypatch.setattr(
        gc, "load_data", lambda *args: ((tf_dataset(), tf_dataset()), FAKE_INFO)
    )
    path = tmp_path / "r.json"
    assert gc.main(["--runs", "5", "--json", str(path)]) == 130
    report = strict_json(path.read_text())
    assert [run["seed"] for run in report["runs"]] == [1337]
    err = capsys.readouterr().err
    assert err.strip() == f"Interrupted: 1 finished pair(s) kept in {path}."


class FAKE_INFO:
    features = {"image": type("Image", (), {"shape": (300, 300, 3)})}


def tf_dataset():
    return gc.tf.data.Dataset.from_tensor_slices(np.zeros((2, 1)))


def test_ctrl_c_exits_130_without_traceback(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            SCRIPT,
            *"--mock-data 8 --epochs 50 --batch-size 4 --json r.json".split(),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until training has started, then press Ctrl-C.
    for line in process.stdout:
        if line.startswith("Epoch 2/"):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert "Interrupted: no report written." in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_unwritable_destination_exits_2_before_training(tmp_path, flag):
    result = run_script(f"--mock-data 8 {flag} /no/such/dir/r.out", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot write /no/such/dir/r.out" in result.stderr
    assert "Traceback" not in result.stderr and "Epoch" not in result.stdout


def test_quiet_start(report_run):
    result, _, _ = report_run
    assert result.stdout.startswith("Image shape: (300, 300, 3)\nTraining images: 24")
    noise = [
        line
        for line in result.stderr.splitlines()
        if "WARNING" in line or line.startswith(("I0000", "W0000"))
    ]
    assert noise == []

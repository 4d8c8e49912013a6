"""The example as a program: what it trains, what it prints and writes, and every
claim its comparison makes (the test figures, the times, the fair start, the seeds,
the interval and the verdict, the report written after every pair).
"""

import ast
import datetime
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import requests
import tensorflow as tf

import counted_clock
import gradient_centralization as gc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gradient_centralization.py")
ARM_KEYS = ("rmsprop", "gc_rmsprop")
TABLE_LABELS = (
    "Training loss",
    "Training accuracy",
    "Test loss",
    "Test accuracy",
    "Test AUC",
    "Training time, warm epochs (s)",
)
TEST_METRICS = ("test_auc", "test_accuracy", "test_loss")


def run_script(command_line, cwd, env=None):
    """Runs the script; Keras' progress bars lose their colour codes in stdout."""
    result = subprocess.run(
        [sys.executable, SCRIPT, *command_line.split()],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    result.stdout = re.sub("\x1b\\[[0-9;]*m", "", result.stdout)
    return result


def strict_json(text):
    def reject(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def fingerprint_of_seed(seed):
    """The fingerprint of the model that `seed` builds, before any training."""
    keras.utils.set_random_seed(seed)
    return gc.weights_fingerprint(gc.build_training_model())


# One offline run of the whole script: 2 pairs of 2 epochs on 20 random images, in
# batches of 8: one pass over the images is 3 steps, the last one short.


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    result = run_script(
        "--mock-data 20 --epochs 2 --batch-size 8 --runs 2 --json report.json "
        "--plot curves.png",
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return result, strict_json((folder / "report.json").read_text()), folder


def test_report_schema(report_run):
    _, report, _ = report_run
    assert set(report) == {"config", "produced", "runs", "summary"}
    produced = dict(report["produced"])
    written = datetime.datetime.strptime(produced.pop("date"), "%Y-%m-%dT%H:%M:%SZ")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert datetime.timedelta(0) <= now - written < datetime.timedelta(hours=1)
    backend = keras.backend.backend()
    assert produced == {
        "keras": keras.version(),
        "tensorflow": tf.__version__,
        backend: sys.modules[backend].__version__,
    }
    assert report["config"] == {
        "epochs": 2,
        "batch_size": 8,
        "learning_rate": 1e-4,
        "seed": 1337,
        "runs": 2,
        "mock_data": 20,
        "json": "report.json",
        "plot": "curves.png",
        "backend": keras.backend.backend(),
    }
    for run in report["runs"]:
        assert set(run) == {"seed", "arms"} and set(run["arms"]) == set(ARM_KEYS)
        for arm in run["arms"].values():
            assert len(arm["history"]["loss"]) == len(arm["history"]["accuracy"]) == 2
            assert len(arm["epoch_times"]) == 2 and min(arm["epoch_times"]) > 0
            # The warm epochs: all but the first.
            assert arm["training_time"] == pytest.approx(arm["epoch_times"][1])
            assert set(arm["test"]) == {"loss", "accuracy", "auc"}
            assert 0 <= arm["test"]["auc"] <= 1
            assert re.fullmatch("[0-9a-f]{16}", arm["initial_weights"])
    assert set(report["summary"]) == {"difference", "verdict"}


def test_each_pair_is_trained_from_its_recorded_seed(report_run):
    """`runs[i].seed` is the seed pair i was trained from: both of its models
    started from the weights that seed builds, and pair i uses seed + i."""
    _, report, _ = report_run
    assert [run["seed"] for run in report["runs"]] == [1337, 1338]
    for run in report["runs"]:
        expected = fingerprint_of_seed(run["seed"])
        for key in ARM_KEYS:
            assert run["arms"][key]["initial_weights"] == expected


def test_arms_start_equal_and_train_differently(report_run):
    _, report, _ = report_run
    for run in report["runs"]:
        plain, centralized = (run["arms"][key] for key in ARM_KEYS)
        assert plain["initial_weights"] == centralized["initial_weights"]
        assert plain["history"]["loss"] != centralized["history"]["loss"]


def test_summary_is_the_paired_difference_of_the_runs(report_run):
    _, report, _ = report_run
    summary = report["summary"]
    assert set(summary["difference"]) == set(summary["verdict"]) == set(TEST_METRICS)
    for metric in ("auc", "accuracy", "loss"):
        differences = [
            run["arms"]["gc_rmsprop"]["test"][metric]
            - run["arms"]["rmsprop"]["test"][metric]
            for run in report["runs"]
        ]
        expected = gc.paired_difference(differences)
        difference = summary["difference"][f"test_{metric}"]
        assert difference["mean"] == pytest.approx(expected["mean"])
        assert difference["ci95"] == pytest.approx(expected["ci95"])
        higher_is_better = metric != "loss"
        assert summary["verdict"][f"test_{metric}"] == gc.verdict(
            expected, higher_is_better
        )


def test_printed_sections_in_order(report_run):
    result, report, _ = report_run
    out = result.stdout
    # Each section's output, in the order of the sections.
    milestones = [
        "Image shape: (300, 300, 3)\nTraining images: 20, test images: 20\n",
        "Total params: 1,704,097",
        "Column means before: [4.5 5.5 6.5]\nColumn means after:  [0. 0. 0.]\n",
        "Pair 1/2, seed 1337\n",
        "Epoch 1/2",
        "Not using Gradient Centralization       Using Gradient Centralization",
        "Pair 2/2, seed 1338",
        "GC minus plain RMSprop, over 2 pairs of runs:",
    ]
    positions = [out.find(milestone) for milestone in milestones]
    assert -1 not in positions, [m for m, p in zip(milestones, positions) if p < 0]
    assert positions == sorted(positions)
    assert out.count("Total params") == 1
    assert out.count("Using Gradient Centralization") == 2  # One table per pair.
    # One pass over the 20 images per epoch: 3 steps of at most 8.
    assert {total for _, total in re.findall(r"(\d+)/(\d+) ━", out)} == {"3"}
    for label in TABLE_LABELS:
        assert out.count(f"\n{label} ") == 2
    summary = report["summary"]
    for name in TEST_METRICS:
        low, high = summary["difference"][name]["ci95"]
        line = f"{name}: {summary['difference'][name]['mean']:+.4g}, 95% CI "
        assert f"{line}[{low:+.4g}, {high:+.4g}]: " in out


def test_plot_is_an_image(report_run):
    _, _, folder = report_run
    data = (folder / "curves.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_same_seed_same_numbers_and_one_table_for_one_pair(report_run, tmp_path):
    _, report, _ = report_run
    result = run_script(
        "--mock-data 20 --epochs 2 --batch-size 8 --json again.json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-5000:]
    again = strict_json((tmp_path / "again.json").read_text())
    for key in ARM_KEYS:
        first, repeat = report["runs"][0]["arms"][key], again["runs"][0]["arms"][key]
        assert repeat["history"] == first["history"]
        assert repeat["test"] == first["test"]
        assert repeat["initial_weights"] == first["initial_weights"]
    assert again["summary"]["verdict"] == dict.fromkeys(TEST_METRICS, "single run")
    out = result.stdout
    assert "A single run supports no claim" in out
    assert out.count("Using Gradient Centralization") == 1 and "±" not in out
    assert "Pair 1/1, seed 1337\n" in out
    assert "Pair 2/" not in out and "GC minus plain" not in out


def test_split_sizes_come_from_the_data(reader_env, tmp_path):
    """On the fake dataset (8 training, 4 test images), found through TFDS_DATA_DIR."""
    result = run_script("--epochs 1 --batch-size 4", cwd=tmp_path, env=reader_env)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Training images: 8, test images: 4\n" in result.stdout
    assert {total for _, total in re.findall(r"(\d+)/(\d+) ━", result.stdout)} == {"2"}


# Claims checked in this process, on two small splits that differ.


def small_splits():
    """8 training images of label 0 and 4 other test images, 3 of label 1: the two
    splits give different losses and accuracies on the same model."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 300, 300, 3), dtype=np.uint8)
    labels = np.array([0] * 8 + [1, 1, 1, 0], dtype="int64")
    train = tf.data.Dataset.from_tensor_slices((images[:8], labels[:8]))
    test = tf.data.Dataset.from_tensor_slices((images[8:], labels[8:]))
    return train.cache(), test


def options(*flags):
    return gc.parse_args(["--batch-size", "4", *flags])


def untrained_scores(seed, dataset):
    keras.utils.set_random_seed(seed)
    model = gc.build_training_model()
    model.compile("rmsprop", "binary_crossentropy", metrics=["accuracy", "auc"])
    return model.evaluate(dataset.batch(4), verbose=0, return_dict=True)


def test_test_figures_come_from_the_test_split():
    # At a learning rate of 1e-30 the weights do not move, so the trained model
    # scores as the untrained one: on the test split, and not on the training one.
    train, test = small_splits()
    args = options("--epochs", "1", "--learning-rate", "1e-30")
    record = gc.train_arm(keras.optimizers.RMSprop, 7, (train, test), args)
    on_test, on_train = untrained_scores(7, test), untrained_scores(7, train)
    assert on_test["loss"] != pytest.approx(on_train["loss"], rel=1e-3)
    assert on_test["accuracy"] != on_train["accuracy"]
    assert on_test["auc"] != pytest.approx(on_train["auc"], abs=1e-3)
    assert record["test"] == pytest.approx(on_test, rel=1e-5)


def test_epoch_times_are_each_epochs_wall_time(monkeypatch):
    # A controlled clock: epochs run from 100 to 103, 200 to 201.5 and 300 to 302.
    ticks = iter([100.0, 103.0, 200.0, 201.5, 300.0, 302.0])
    monkeypatch.setattr(gc, "time", lambda: next(ticks))
    record = gc.train_arm(
        keras.optimizers.RMSprop, 0, small_splits(), options("--epochs", "3")
    )
    assert record["epoch_times"] == [3.0, 1.5, 2.0]
    # The training time is that of the warm epochs: the first is left out.
    assert record["training_time"] == 3.5
    assert next(ticks, "no more ticks") == "no more ticks"


def test_one_epoch_is_its_own_training_time(monkeypatch):
    ticks = iter([100.0, 103.0])
    monkeypatch.setattr(gc, "time", lambda: next(ticks))
    record = gc.train_arm(
        keras.optimizers.RMSprop, 0, small_splits(), options("--epochs", "1")
    )
    assert record["epoch_times"] == [3.0] and record["training_time"] == 3.0


def test_timed_epochs_do_the_same_work_in_both_arms(monkeypatch):
    # Issue 33's guard, counted rather than timed. In a fresh process the first
    # arm's first epoch pays for the process's first touch of its memory (1.5
    # million more page faults; benchmarks/results/arm_probe_cpu/fresh/) and both
    # arms' first epochs for tracing the step. Here the clock reads the
    # work done so far: a step costs 1, a trace 10, the process's first trace 100
    # more. The row must hold no trace and the same steps in both arms.
    work = counted_clock.new_work()

    class CountingTimeHistory(gc.TimeHistory):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.epoch_work = []

        def on_epoch_begin(self, epoch, logs=None):
            self.work_at_start = dict(work)
            super().on_epoch_begin(epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            counted_clock.count_step(work)

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            done = {key: work[key] - self.work_at_start[key] for key in work}
            self.epoch_work.append((done["steps"], done["traces"]))

    timers = []

    def counting_timer():
        timers.append(CountingTimeHistory())
        return timers[-1]

    counted = counted_clock.counting_traces(work, keras.Model.train_step)
    monkeypatch.setattr(keras.Model, "train_step", counted)
    monkeypatch.setattr(gc, "TimeHistory", counting_timer)
    monkeypatch.setattr(gc, "time", lambda: work["clock"])
    # 8 pictures in batches of 3: each epoch ends on a smaller batch.
    args = options("--epochs", "3", "--batch-size", "3", "--learning-rate", "1e-30")
    records = [
        gc.train_arm(optimizer, 0, small_splits(), args)
        for optimizer in (keras.optimizers.RMSprop, gc.GCRMSprop)
    ]
    plain, centralized = (timer.epoch_work for timer in timers)
    assert plain[0][1] >= 1 and centralized[0][1] >= 1  # Each arm traces its step.
    assert plain[1:] == centralized[1:] == [(3, 0), (3, 0)]
    assert records[0]["training_time"] == records[1]["training_time"] == 6.0
    # Over all epochs, the first arm would pay for the process's setup.
    assert sum(records[0]["epoch_times"]) > sum(records[1]["epoch_times"])


# Runs SCRIPT (argv[1], its flags after it) as `python SCRIPT` would, on the
# counted clock (tests/counted_clock.py); prints the training steps run.
COUNTED_CLOCK_RUN = f"""
import runpy, sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
import counted_clock
work = counted_clock.new_work()
counted_clock.install(work)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
print(f"training steps: {{work['steps']}}")
"""


def test_the_process_warms_up_before_the_first_pair(tmp_path):
    # Issue 33's guard for the warm-up, counted rather than timed, in a fresh
    # process: its first training takes its memory from the system (1.5 million
    # more page faults; benchmarks/results/arm_probe_cpu/fresh/), charged here to
    # the first trace. The untimed warm-up epoch must pay that, so that both arms
    # read the same times; and it must change no figure of the pair.
    warm_up = (
        "    train_arm(keras.optimizers.RMSprop, args.seed, data, args, epochs=1)\n"
    )
    with open(SCRIPT) as file:
        source = file.read()
    assert source.count(warm_up) == 1
    (tmp_path / "cold.py").write_text(source.replace(warm_up, ""))
    reports = {}
    for name, script in (("warm", SCRIPT), ("cold", str(tmp_path / "cold.py"))):
        flags = ["--mock-data", "8", "--epochs", "2", "--batch-size", "4"]
        flags += ["--json", f"{name}.json"]
        result = subprocess.run(
            [sys.executable, "-c", COUNTED_CLOCK_RUN, script, *flags],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-5000:]
        (run,) = json.loads((tmp_path / f"{name}.json").read_text())["runs"]
        reports[name] = [run["arms"][key] for key in ARM_KEYS]
        # Two steps per epoch: one warm-up epoch, then two epochs per arm.
        steps = {"warm": 10, "cold": 8}[name]
        assert f"training steps: {steps}\n" in result.stdout
    plain, centralized = reports["warm"]
    assert plain["epoch_times"][0] >= 12.0  # A trace and two steps at least.
    assert plain["epoch_times"] == centralized["epoch_times"]
    assert plain["epoch_times"][1:] == [2.0]
    # Without the warm-up, the first arm's first epoch pays for the process.
    cold_plain, cold_centralized = reports["cold"]
    assert cold_plain["epoch_times"][0] == cold_centralized["epoch_times"][0] + 100
    for warm, cold in zip(reports["warm"], reports["cold"]):
        for key in ("history", "test", "initial_weights"):
            assert warm[key] == cold[key]


def pictures_in_training_order(monkeypatch, optimizer_class, seed, epochs=2):
    """The training pictures in the order `train_arm` feeds them to `fit`, by id
    (picture i is filled with the value i)."""
    images = np.repeat(np.arange(8, dtype=np.uint8), 300 * 300 * 3)
    images = images.reshape(8, 300, 300, 3)
    train = tf.data.Dataset.from_tensor_slices((images, np.zeros(8, "int64")))
    seen = []

    def record(batch):
        seen.extend(batch[:, 0, 0, 0].numpy().tolist())
        return batch

    def recorded(batch, labels):
        same = tf.py_function(record, [batch], batch.dtype)
        return tf.ensure_shape(same, batch.shape), labels

    build = gc.build_training_model

    def build_recording_model():
        model = build()
        fit = model.fit
        model.fit = lambda batches, **kwargs: fit(batches.map(recorded), **kwargs)
        return model

    monkeypatch.setattr(gc, "build_training_model", build_recording_model)
    args = options("--epochs", str(epochs), "--learning-rate", "1e-30")
    gc.train_arm(optimizer_class, seed, (train.cache(), small_splits()[1]), args)
    return seen[: 8 * epochs]  # Prefetching may read ahead: what fit consumed.


def test_pictures_are_shuffled_alike_in_both_arms(monkeypatch):
    plain, centralized = (
        pictures_in_training_order(monkeypatch, optimizer_class, 5)
        for _, optimizer_class in gc.arms.values()
    )
    assert plain == centralized
    first, second = plain[:8], plain[8:]
    # Each epoch is one pass over all pictures, in a shuffled order of its own.
    assert sorted(first) == sorted(second) == list(range(8))
    assert first != list(range(8)) and second != first
    assert pictures_in_training_order(monkeypatch, keras.optimizers.RMSprop, 6) != plain


def test_fingerprint_is_of_the_initial_weights():
    record = gc.train_arm(
        keras.optimizers.RMSprop,
        3,
        small_splits(),
        options("--epochs", "1", "--learning-rate", "0.01"),
    )
    assert record["initial_weights"] == fingerprint_of_seed(3)
    assert fingerprint_of_seed(3) != fingerprint_of_seed(4)


def test_fingerprint_covers_every_weight():
    keras.utils.set_random_seed(0)
    model = gc.build_training_model()
    before = gc.weights_fingerprint(model)
    for variable in (model.weights[0], model.weights[-1]):
        original = keras.ops.convert_to_numpy(variable)
        changed = original.copy()
        changed.flat[-1] += 1.0
        variable.assign(changed)
        assert gc.weights_fingerprint(model) != before
        variable.assign(original)
    assert gc.weights_fingerprint(model) == before


def test_arms_differ_only_in_the_optimizer():
    """Same seed, learning rate 1e-30: the optimizer cannot matter, so any other
    difference between the arms (weights, batches, augmentation, dropout) shows."""
    args = options("--epochs", "2", "--learning-rate", "1e-30")
    splits = small_splits()
    plain, centralized = (
        gc.train_arm(optimizer_class, 11, splits, args)
        for _, optimizer_class in gc.arms.values()
    )
    assert plain["initial_weights"] == centralized["initial_weights"]
    for metric in ("loss", "accuracy"):
        expected = centralized["history"][metric]
        assert plain["history"][metric] == pytest.approx(expected, rel=1e-6)
    assert plain["test"] == pytest.approx(centralized["test"], rel=1e-6)
    # Training figures are of augmented images with dropout, so they are not the
    # test figures (which also come from other images).
    assert plain["history"]["loss"][-1] != pytest.approx(plain["test"]["loss"])


def test_the_arms_are_rmsprop_and_gcrmsprop():
    assert [optimizer for _, optimizer in gc.arms.values()] == [
        keras.optimizers.RMSprop,
        gc.GCRMSprop,
    ]
    assert issubclass(gc.GCRMSprop, gc.GradientCentralization)


# The figures printed: the table of a pair.


def fake_record(losses, accuracies, test_loss, test_accuracy, epoch_times, auc=0.5):
    return {
        "history": {"loss": losses, "accuracy": accuracies},
        "epoch_times": epoch_times,
        "training_time": sum(epoch_times),
        "test": {"loss": test_loss, "accuracy": test_accuracy, "auc": auc},
        "initial_weights": "0" * 16,
    }


def table_cells(text):
    """{label: [cell per arm]} of a printed pair table."""
    return {
        line[:30].strip(): line[30:].split()
        for line in text.splitlines()[1:]
        if line.strip()
    }


def test_pair_table_shows_each_figure_in_its_column():
    records = {
        "rmsprop": fake_record(
            [0.9, 0.61], [0.4, 0.72], 0.55, 0.75, [2.0, 1.0, 1.5], auc=0.875
        ),
        "gc_rmsprop": fake_record(
            [0.8, 0.42], [0.5, 0.83], 0.45, 0.8125, [3, 2.5], auc=0.9375
        ),
    }
    text = gc.format_pair(records)
    header = text.splitlines()[0]
    assert header.index("Not using Gradient") < header.index("  Using Gradient")
    assert table_cells(text) == {
        "Training loss": ["0.61", "0.42"],
        "Training accuracy": ["0.72", "0.83"],
        "Test loss": ["0.55", "0.45"],
        "Test accuracy": ["0.75", "0.8125"],
        "Test AUC": ["0.875", "0.9375"],
        "Training time, warm epochs (s)": ["4.5", "5.5"],
    }


def test_table_columns_stay_aligned_for_any_value():
    wild = fake_record([1.5e37], [float("nan")], float("inf"), -1e-12, [12345.678])
    calm = fake_record([0.1], [0.2], 0.3, 0.4, [1.0])
    lines = gc.format_pair({"rmsprop": wild, "gc_rmsprop": calm}).splitlines()
    assert len({len(line) for line in lines}) == 1


def test_plot_draws_the_mean_curve_and_a_band():
    pairs = [
        {
            "rmsprop": fake_record([1.0, 0.6], [0.5, 0.7], 0.5, 0.7, [1, 1]),
            "gc_rmsprop": fake_record([1.0, loss], [0.5, 0.8], 0.4, 0.8, [1, 1]),
        }
        for loss in (0.4, 0.6)
    ]
    figure = gc.plot_curves(pairs)
    loss_axis, accuracy_axis = figure.axes
    lines = [line.get_label() for line in loss_axis.get_lines()]
    assert lines == [title for title, _ in gc.arms.values()]
    np.testing.assert_allclose(loss_axis.get_lines()[1].get_ydata(), [1.0, 0.5])
    np.testing.assert_allclose(accuracy_axis.get_lines()[1].get_ydata(), [0.5, 0.8])
    np.testing.assert_array_equal(loss_axis.get_lines()[0].get_xdata(), [1, 2])
    assert len(loss_axis.collections) == 2  # A band per arm: several pairs.
    assert len(gc.plot_curves(pairs[:1]).axes[0].collections) == 0


# The interval and the verdict, on hand-made numbers.


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
    assert gc.verdict(negative, higher_is_better=True) == "worse"


def test_single_run_and_diverged_runs_support_no_claim():
    single = gc.paired_difference([0.1])
    assert single == {"mean": pytest.approx(0.1), "ci95": None}
    assert gc.verdict(single, higher_is_better=True) == "single run"
    diverged = gc.paired_difference([0.1, float("nan"), 0.2])
    assert gc.verdict(diverged, higher_is_better=True) == "undefined"


def pairs_from(test_figures):
    """Runs whose arms have the given (plain, gc) test (loss, accuracy[, AUC])."""
    return [
        {
            "seed": seed,
            "arms": {
                key: fake_record([0.5], [0.5], *test[:2], [1.0], *test[2:])
                for key, test in zip(ARM_KEYS, figures)
            },
        }
        for seed, figures in enumerate(test_figures)
    ]


# Test (loss, accuracy, AUC) of three pairs, (plain, GC): GC's accuracy is 0.05 to
# 0.07 higher, its loss 0.05 to 0.07 lower and its AUC 0.02 to 0.04 higher.
TEST_FIGURES = [
    ((0.60, 0.70, 0.80), (0.55, 0.75, 0.82)),
    ((0.50, 0.72, 0.82), (0.44, 0.78, 0.85)),
    ((0.40, 0.74, 0.84), (0.33, 0.81, 0.88)),
]


def test_summary_is_gc_minus_plain_with_verdicts():
    summary = gc.summarize(pairs_from(TEST_FIGURES))
    assert summary["difference"]["test_auc"]["mean"] == pytest.approx(0.03)
    assert summary["difference"]["test_accuracy"]["mean"] == pytest.approx(0.06)
    assert summary["difference"]["test_loss"]["mean"] == pytest.approx(-0.06)
    # t(0.975, 2) * 0.01 / sqrt(3) = 0.0248414.
    assert summary["difference"]["test_loss"]["ci95"] == pytest.approx(
        [-0.0848414, -0.0351586], abs=1e-6
    )
    assert summary["verdict"] == dict.fromkeys(TEST_METRICS, "better")
    text = gc.format_summary(summary, 3)
    assert text.splitlines() == [
        "GC minus plain RMSprop, over 3 pairs of runs:",
        "test_auc: +0.03, 95% CI [+0.005159, +0.05484]: GC better",
        "test_accuracy: +0.06, 95% CI [+0.03516, +0.08484]: GC better",
        "test_loss: -0.06, 95% CI [-0.08484, -0.03516]: GC better",
    ]
    swapped = [(centralized, plain) for plain, centralized in TEST_FIGURES]
    worse = gc.summarize(pairs_from(swapped))
    assert worse["verdict"] == dict.fromkeys(TEST_METRICS, "worse")
    assert "GC worse" in gc.format_summary(worse, 3)


def test_summary_text_for_one_pair_and_for_a_diverged_run():
    one = gc.format_summary(gc.summarize(pairs_from([((0.6, 0.7), (0.5, 0.8))])), 1)
    assert one == (
        "A single run supports no claim: --runs N (N >= 2) gives an interval."
    )
    diverged = gc.summarize(
        pairs_from([((0.6, 0.7), (float("nan"), 0.8)), ((0.6, 0.7), (0.5, 0.8))])
    )
    assert diverged["verdict"]["test_loss"] == "undefined"
    assert "test_loss: +nan, 95% CI [+nan, +nan]: undefined" in gc.format_summary(
        diverged, 2
    )


# The command line.


@pytest.mark.parametrize(
    "flags",
    [
        "--epochs 0",
        "--epochs ten",
        "--batch-size -1",
        "--mock-data 0",
        "--learning-rate 0",
        "--learning-rate -1e-4",
        "--learning-rate nan",
        "--learning-rate inf",
        "--learning-rate -inf",
        "--runs 0",
        "--seed -5",
        "--seed 4294967296",
        "--seed 4294967295 --runs 2",
        "--plot curves.foo",
        "--plot curves",
        "--json {tmp}",
        "--plot {tmp}/no/such/folder/curves.png",
        "--json {tmp}/a-file/report.json",
    ],
)
def test_bad_values_exit_2(flags, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        gc.parse_args(flags.format(tmp=tmp_path).split())
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("error: ") == 1


def test_good_values_pass(tmp_path):
    args = gc.parse_args(
        f"--seed 0 --runs 3 --plot {tmp_path}/c.SVG --json {tmp_path}/r.json".split()
    )
    assert (args.seed, args.runs, args.plot) == (0, 3, f"{tmp_path}/c.SVG")
    assert gc.parse_args(["--seed", str(2**32 - 2), "--runs", "2"]).seed == 2**32 - 2


@pytest.mark.parametrize(
    "flags", ["--seed -5 --mock-data 8", "--mock-data 8 --plot curves.foo"]
)
def test_bad_value_exits_2_before_training_without_traceback(tmp_path, flags):
    result = run_script(flags, cwd=tmp_path)
    assert result.returncode == 2
    assert "error: " in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


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
        "--mock-data",
        "--json",
        "--plot",
    ):
        assert flag in out


def reference_flag_table():
    """{flag: (value name, default, meaning)} from docs/reference.md's flag table."""
    reference = open(os.path.join(ROOT, "docs", "reference.md")).read()
    rows = re.findall(
        r"^\| `(--[a-z-]+) ([A-Z]+)` \| ([^|]+) \| ([^|]+) \|$", reference, re.M
    )
    return {
        flag: (value, default.strip(), meaning.strip())
        for flag, value, default, meaning in rows
    }


def test_help_says_what_the_reference_says(capsys):
    """Each flag's --help line is the reference's meaning and default, word for word."""
    table = reference_flag_table()
    assert list(table) == [flag for flag, *_ in gc.FLAGS]
    with pytest.raises(SystemExit):
        gc.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for flag, (value, default, meaning) in table.items():
        assert f"{flag} {value} {meaning} (default: {default})" in help_text


def test_defaults_reproduce_the_original():
    args = vars(gc.parse_args([]))
    assert args == {
        "epochs": 10,
        "batch_size": 128,
        "learning_rate": 1e-4,
        "seed": 1337,
        "runs": 1,
        "mock_data": None,
        "json": None,
        "plot": None,
    }


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
def test_unreachable_dataset_explains_and_exits_1(monkeypatch, error):
    calls = []

    def failing_load(*args, **kwargs):
        calls.append((args, kwargs))
        raise error

    monkeypatch.setattr(gc.tfds, "load", failing_load)
    with pytest.raises(SystemExit) as exit_info:
        gc.load_data()
    assert calls[0][0] == ("horses_or_humans",)
    # sys.exit with a message: the message goes to stderr and the status is 1.
    message = exit_info.value.code
    assert isinstance(message, str)
    assert f"{type(error).__name__}: {error}" in message
    assert "154 MiB" in message and "TFDS_DATA_DIR" in message
    assert "--mock-data" in message


def test_dataset_download_dependency_is_installed():
    # tensorflow-datasets imports it (undeclared) before downloading a dataset;
    # requirements.txt must install it, or the first real run fails.
    import importlib_resources.abc

    assert importlib_resources.abc.Traversable


def test_import_prints_and_trains_nothing():
    result = subprocess.run(
        [sys.executable, "-c", "import gradient_centralization"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""


# The model and its augmentation.

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


def test_training_model_uses_keras_stock_augmentation_layers():
    model = gc.build_training_model()
    assert [type(layer).__name__ for layer in model.layers] == [
        "Rescaling",
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "Sequential",
    ]
    rescaling, flip, rotation, zoom, _ = (layer.get_config() for layer in model.layers)
    assert rescaling["scale"] == pytest.approx(1 / 255)
    assert flip["mode"] == "horizontal_and_vertical"
    assert np.abs(np.ravel(rotation["factor"])).max() == pytest.approx(0.3)
    assert np.abs(np.ravel(zoom["height_factor"])).max() == pytest.approx(0.2)
    assert model.inputs[0].dtype == "uint8"
    # They add no weights: the model trained is the original CNN.
    assert model.count_params() == 1_704_097


def preprocess(seed, images, training=True):
    keras.utils.set_random_seed(seed)
    model = gc.build_training_model()
    x = images
    for layer in model.layers[:4]:
        x = layer(x, training=training)
    return keras.ops.convert_to_numpy(x)


def test_augmentation_is_seeded_and_only_in_training():
    images = np.random.default_rng(1).integers(0, 256, (4, 300, 300, 3), "uint8")
    first, again, other = (preprocess(seed, images) for seed in (5, 5, 6))
    np.testing.assert_array_equal(first, again)  # Both arms see the same draws.
    assert not np.allclose(first, other)
    assert not np.allclose(first, images / 255)  # It does augment.
    np.testing.assert_allclose(preprocess(5, images, training=False), images / 255)


def test_the_pipeline_feeds_raw_bytes():
    train_ds, test_ds = gc.load_data(mock_examples=4)
    assert train_ds.element_spec[0].dtype == tf.uint8
    assert test_ds.element_spec[0].dtype == tf.uint8
    assert (len(train_ds), len(test_ds)) == (4, 4)


def test_no_private_or_tensorflow_only_code_in_the_example():
    source = open(SCRIPT).read()
    for forbidden in ("raw_ops", "custom_gradient", "keras.src", "dup2"):
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
    result = run_script(
        "--mock-data 8 --epochs 1 --batch-size 4 --json r.json",
        cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = strict_json((tmp_path / "r.json").read_text())
    assert report["config"]["backend"] == backend
    plain, centralized = (report["runs"][0]["arms"][key] for key in ARM_KEYS)
    assert plain["initial_weights"] == centralized["initial_weights"]
    assert plain["history"]["loss"] != centralized["history"]["loss"]


# A report that survives divergence and interruption.


def test_diverging_run_writes_strict_json_and_undefined_verdict(tmp_path):
    result = run_script(
        "--mock-data 8 --epochs 1 --batch-size 4 --runs 2 --learning-rate 1e37 "
        "--json r.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = strict_json((tmp_path / "r.json").read_text())
    losses = [
        arm["test"]["loss"] for run in report["runs"] for arm in run["arms"].values()
    ]
    assert None in losses  # NaN written as null.
    assert report["summary"]["verdict"]["test_loss"] == "undefined"
    assert re.search(r"^test_loss: .*: undefined$", result.stdout, re.MULTILINE)
    tables = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(TABLE_LABELS) or "Using Gradient" in line
    ]
    assert len(tables) == 2 * (1 + len(TABLE_LABELS))
    assert len({len(line) for line in tables}) == 1


def interrupt(tmp_path, flags, when):
    """Runs the script, presses Ctrl-C once stdout shows `when`; returns the result."""
    process = subprocess.Popen(
        [sys.executable, SCRIPT, *flags.split()],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if line.startswith(when):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    return process.returncode, err


def test_interrupted_in_the_first_pair_writes_no_report(tmp_path):
    returncode, err = interrupt(
        tmp_path, "--mock-data 8 --epochs 50 --batch-size 4 --json r.json", "Epoch 2/"
    )
    assert returncode != 0 and "KeyboardInterrupt" in err
    assert not (tmp_path / "r.json").exists()


def test_interrupted_run_keeps_every_finished_pair(tmp_path):
    """The report is written after every pair: interrupted in the second pair, it
    holds the first, complete."""
    returncode, err = interrupt(
        tmp_path,
        "--mock-data 8 --epochs 2 --batch-size 4 --runs 3 --json r.json",
        "Pair 2/3",
    )
    assert returncode != 0 and "KeyboardInterrupt" in err
    report = strict_json((tmp_path / "r.json").read_text())
    assert [run["seed"] for run in report["runs"]] == [1337]
    assert report["summary"]["verdict"]["test_accuracy"] == "single run"
    assert not (tmp_path / "r.json.tmp").exists()

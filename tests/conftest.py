import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # Two logical CPU devices, for the tf.distribute.MirroredStrategy tests. This
    # must happen before TensorFlow initializes its devices.
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )


def flat_text(*path):
    """The repository file at `path`, its whitespace runs made single spaces, so
    that a quote may span the file's line breaks."""
    with open(os.path.join(ROOT, *path)) as file:
        return " ".join(file.read().split())


FAKE_DATASET = os.path.join(ROOT, "tests", "fake_dataset.py")


@pytest.fixture(scope="session")
def prepared_data_dir(tmp_path_factory):
    """A tfds data directory holding a fake `horses_or_humans` (8 train, 4 test).

    tests/fake_dataset.py runs tfds' real download-and-prepare path against zips
    served from 127.0.0.1; it runs in a subprocess, so that the patched builder
    URLs and the server never touch this process. The two splits differ in size, so
    a figure taken from the wrong split shows.
    """
    data_dir = tmp_path_factory.mktemp("tfds")
    result = subprocess.run(
        [sys.executable, FAKE_DATASET, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    sizes = json.loads(result.stdout.strip().splitlines()[-1])
    assert sizes == {"train": 8, "test": 4}
    assert (data_dir / "horses_or_humans" / "3.0.0" / "dataset_info.json").is_file()
    return data_dir


@pytest.fixture(scope="session")
def reader_env(prepared_data_dir):
    """The environment of a reader's run, with the fake dataset as tfds' default
    (found through `TFDS_DATA_DIR`, as real data is found in ~/tensorflow_datasets).
    """
    env = dict(os.environ, TFDS_DATA_DIR=str(prepared_data_dir))
    # This venv's python and tools first, as for a reader who activated it.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # A kernel shows matplotlib figures inline only with its own default backend.
    env.pop("MPLBACKEND", None)
    return env


@pytest.fixture
def run_benchmark(tmp_path):
    """Runs `benchmarks/SCRIPT FLAGS...` (SCRIPT as `speed/epoch_time_ratio.py`) in
    `tmp_path`, where a relative `--json` lands; returns the finished process, which
    must have succeeded."""

    def run(script, *flags):
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "benchmarks", script), *flags],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    return run

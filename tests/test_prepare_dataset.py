"""benchmarks/tools/prepare_dataset.py, offline, on a few generated pictures.

The pictures differ from each other (noise) and the classes and splits differ in
size, so a swapped label, a dropped picture or split, or a split read from the
wrong folder shows in what `tfds.load` gives back.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "tools", "prepare_dataset.py")
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import fake_dataset  # noqa: E402
import prepare_dataset  # noqa: E402

# Pictures per folder of PICTURES and class; tfds names the validation split "test".
COUNTS = {
    "train": {"horses": 3, "humans": 2},
    "validation": {"horses": 1, "humans": 2},
}
SIZES = {"train": 5, "test": 3}
SPLIT_OF = {"train": "train", "validation": "test"}


def fingerprint(image):
    return hashlib.sha256(image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A PICTURES folder; yields it and {tfds split: sorted (fingerprint, label)}."""
    folder = tmp_path_factory.mktemp("pictures")
    written = fake_dataset.write_pictures(str(folder), COUNTS)
    expected = {}
    for (split, label), images in written.items():
        expected.setdefault(SPLIT_OF[split], []).extend(
            (fingerprint(image), prepare_dataset.CLASSES.index(label))
            for image in images
        )
    return folder, {split: sorted(items) for split, items in expected.items()}


@pytest.fixture
def no_proxy(monkeypatch):
    """prepare() sets NO_PROXY for its server; restore this process' own after."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, os.environ.get(name, ""))


def loaded(data_dir):
    """{split: sorted (fingerprint, label)} of horses_or_humans in `data_dir`."""
    import tensorflow_datasets as tfds

    found = {}
    for split in SIZES:
        dataset = tfds.load(
            "horses_or_humans", data_dir=str(data_dir), split=split, as_supervised=True
        )
        items = []
        for image, label in tfds.as_numpy(dataset):
            assert image.shape == (300, 300, 3)
            items.append((fingerprint(image), int(label)))
        found[split] = sorted(items)
    return found


def test_prepare_gives_the_folders_pictures_and_labels(pictures, tmp_path, no_proxy):
    folder, expected = pictures
    module = __import__(prepare_dataset.BUILDER_MODULE, fromlist=["_TRAIN_URL"])
    urls = (module._TRAIN_URL, module._TEST_URL)

    assert prepare_dataset.prepare(str(folder), tmp_path) == SIZES
    # Every picture, in its own split, labelled by its folder: horses 0, humans 1.
    assert loaded(tmp_path) == expected
    # The builder's download URLs are the real ones again.
    assert (module._TRAIN_URL, module._TEST_URL) == urls


def run_script(folder, data_dir, timeout):
    """`python benchmarks/tools/prepare_dataset.py PICTURES DATA_DIR`, finished."""
    return subprocess.run(
        [sys.executable, SCRIPT, str(folder), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_script_prepares_the_data_dir(pictures, tmp_path):
    folder, expected = pictures
    data_dir = tmp_path / "tfds"
    result = run_script(folder, data_dir, timeout=300)
    assert result.returncode == 0, result.stderr[-5000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == SIZES
    assert loaded(data_dir) == expected


def bad_pictures(root, case):
    """A PICTURES folder (or not) that the script must refuse, and its message."""
    folder = root / "pictures"
    if case == "missing":
        return folder, "is not a folder"
    if case == "unpacked at the root":  # horses/ and humans/, no train/ validation/
        fake_dataset.write_pictures(str(root), {"pictures": 1})
        return folder, "has no folder train/horses"
    if case == "no validation":
        fake_dataset.write_pictures(str(folder), {"train": 1})
        return folder, "has no folder validation/horses"
    if case == "a class without pictures":
        fake_dataset.write_pictures(str(folder), COUNTS)
        for name in os.listdir(folder / "validation" / "humans"):
            os.rename(folder / "validation" / "humans" / name, folder / name)
        return folder, "No pictures in"
    raise ValueError(case)


CASES = ["missing", "unpacked at the root", "no validation", "a class without pictures"]


@pytest.mark.parametrize("case", CASES)
def test_script_refuses_bad_pictures_with_a_message(tmp_path, case):
    folder, message = bad_pictures(tmp_path, case)
    data_dir = tmp_path / "tfds"
    result = run_script(folder, data_dir, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "usage:" in result.stderr and "error:" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert not data_dir.exists()


@pytest.mark.parametrize("case", CASES)
def test_prepare_refuses_bad_pictures_with_a_message(tmp_path, case):
    folder, message = bad_pictures(tmp_path, case)
    with pytest.raises(SystemExit, match=message):
        prepare_dataset.prepare(str(folder), tmp_path / "tfds")
    assert not (tmp_path / "tfds").exists()


def test_prepare_refuses_pictures_the_builder_would_skip(tmp_path, no_proxy):
    """The builder silently skips names that are not [\\w-]*.png: prepare says so."""
    folder = tmp_path / "pictures"
    fake_dataset.write_pictures(str(folder), {"train": 1, "validation": 1})
    horses = folder / "validation" / "horses"
    (name,) = os.listdir(horses)
    os.rename(horses / name, horses / "a horse.png")
    with pytest.raises(SystemExit, match=r"'test': 1\}.* not the .*'test': 2\}"):
        prepare_dataset.prepare(str(folder), tmp_path / "tfds")

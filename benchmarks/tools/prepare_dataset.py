"""How to prepare tfds' `horses_or_humans` offline? From a folder of its pictures.

    python benchmarks/tools/prepare_dataset.py PICTURES DATA_DIR

PICTURES holds the two splits as the dataset's own zips unpack them:

    PICTURES/train/horses/*.png       PICTURES/train/humans/*.png       (1,027)
    PICTURES/validation/horses/*.png  PICTURES/validation/humans/*.png  (256)

(`horse-or-human.zip` unpacked into `train/`, `validation-horse-or-human.zip` into
`validation/`; the public mirror `jasonepaul/cnn-horse-or-human` keeps them under
`data/horse-or-human/`.) The script zips each split the way the downloads are laid
out, serves the zips on 127.0.0.1, points the builder's `_TRAIN_URL` and `_TEST_URL`
at them and runs tensorflow-datasets' own `download_and_prepare()` into DATA_DIR.
Then `TFDS_DATA_DIR=DATA_DIR python gradient_centralization.py` trains on them
with no network.
"""

import argparse
import contextlib
import functools
import glob
import http.server
import importlib
import json
import os
import sys
import tempfile
import threading
import zipfile

CLASSES = ("horses", "humans")
# Folder of PICTURES -> the name of the download the builder expects for it.
SPLITS = {"train": "horse-or-human.zip", "validation": "validation-horse-or-human.zip"}
BUILDER_MODULE = "tensorflow_datasets.image_classification.horses_or_humans"
LAYOUT = ", ".join(f"{split}/{label}/*.png" for split in SPLITS for label in CLASSES)


def pictures_of(folder):
    """The PNG files of each class in `folder`, as zip member names -> paths."""
    members = {}
    for label in CLASSES:
        for path in sorted(glob.glob(os.path.join(folder, label, "*.png"))):
            members[f"{label}/{os.path.basename(path)}"] = path
    return members


def problem_with(pictures):
    """Why `pictures` cannot be prepared (a sentence), or None if it can."""
    if not os.path.isdir(pictures):
        return f"{pictures} is not a folder."
    for split in SPLITS:
        for label in CLASSES:
            folder = os.path.join(pictures, split, label)
            if not os.path.isdir(folder):
                return f"{pictures} has no folder {split}/{label}: expected {LAYOUT}."
            if not glob.glob(os.path.join(folder, "*.png")):
                return f"No pictures in {folder}: expected {split}/{label}/*.png."
    return None


def write_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, source in members.items():
            archive.write(source, name)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(directory):
    """Serves `directory` on 127.0.0.1 (a port the OS picks); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def patched(module, **values):
    """Sets attributes of `module`; restores the original values on exit."""
    originals = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(module, name, value)


def prepare(pictures, data_dir):
    """Prepares `horses_or_humans` in `data_dir` from `pictures`; returns the sizes
    of its splits."""
    problem = problem_with(pictures)
    if problem:
        sys.exit(problem)
    import tensorflow_datasets as tfds

    module = importlib.import_module(BUILDER_MODULE)
    # The builder must still read these two attributes, else nothing is patched.
    for name, zip_name in zip(("_TRAIN_URL", "_TEST_URL"), SPLITS.values()):
        if not getattr(module, name, "").endswith("/" + zip_name):
            sys.exit(f"This tensorflow-datasets has no {name} ending in {zip_name}.")
    # The builder names the validation split "test".
    expected = {}
    with tempfile.TemporaryDirectory() as folder:
        for split, zip_name in SPLITS.items():
            members = pictures_of(os.path.join(pictures, split))
            expected["test" if split == "validation" else split] = len(members)
            write_zip(os.path.join(folder, zip_name), members)
        # Requests to 127.0.0.1 must not go through a proxy.
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        with serve(folder) as url, patched(
            module,
            _TRAIN_URL=f"{url}/{SPLITS['train']}",
            _TEST_URL=f"{url}/{SPLITS['validation']}",
        ):
            builder = tfds.builder("horses_or_humans", data_dir=str(data_dir))
            builder.download_and_prepare()
    sizes = {
        str(name): split.num_examples for name, split in builder.info.splits.items()
    }
    if sizes != expected:
        # The builder skips pictures whose names are not [\w-]*.png, and
        # download_and_prepare() leaves an already prepared DATA_DIR as it is.
        sys.exit(
            f"horses_or_humans in {data_dir} has {sizes} examples, not the {expected} "
            f"pictures of {pictures}: are some names not [\\w-]*.png, or was "
            f"{data_dir} prepared before from other pictures?"
        )
    return sizes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pictures", help="folder with train/ and validation/")
    parser.add_argument("data_dir", help="the TFDS_DATA_DIR to prepare")
    args = parser.parse_args()
    problem = problem_with(args.pictures)
    if problem:
        parser.error(problem)
    sizes = prepare(args.pictures, args.data_dir)
    print(f"Prepared horses_or_humans in {args.data_dir}: {sizes}")
    print(json.dumps(sizes))  # The last line, for programs.

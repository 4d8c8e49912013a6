"""A small fake `horses_or_humans`, prepared offline by tensorflow-datasets' own builder.

`prepare(data_dir)` writes two zips shaped like the real downloads (members
`horses/NAME.png` and `humans/NAME.png`, 300x300 RGB PNGs), serves them from
127.0.0.1 with `http.server`, points the builder module's `_TRAIN_URL` and
`_TEST_URL` at that server, runs `builder.download_and_prepare()` into `data_dir`,
and restores both attributes. This runs tfds' real download-and-prepare path (the
one a first real run takes), not `tfds.testing.mock_data`. Afterwards `data_dir`
loads like the real dataset, e.g. through `TFDS_DATA_DIR`.

Run it as a program (`python tests/fake_dataset.py DATA_DIR`) to keep the
patched module attributes and the server out of the calling process; the test
fixture does that.
"""

import contextlib
import functools
import http.server
import json
import os
import struct
import sys
import tempfile
import threading
import zipfile
import zlib

import numpy as np

IMAGE_SIZE = 300
CLASSES = ("horses", "humans")
# Images per split and class: 8 train images and 4 test images in all.
TRAIN_PER_CLASS = 4
TEST_PER_CLASS = 2
BUILDER_MODULE = "tensorflow_datasets.image_classification.horses_or_humans"


def png_bytes(image):
    """Encodes an (H, W, 3) uint8 array as an RGB PNG (no imaging library needed)."""
    height, width, channels = image.shape
    assert channels == 3 and image.dtype == np.uint8

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # Each row starts with filter type 0 (None).
    rows = np.concatenate(
        [np.zeros((height, 1), np.uint8), image.reshape(height, width * 3)], axis=1
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def fake_image(label, rng):
    """A 300x300 RGB image: a class-dependent colour gradient plus noise."""
    ramp = np.linspace(0, 255, IMAGE_SIZE, dtype=np.float32)
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)
    if label == "horses":
        image[..., 0] = ramp[None, :]
        image[..., 1] = 96
        image[..., 2] = ramp[::-1, None]
    else:
        image[..., 0] = ramp[:, None]
        image[..., 1] = ramp[None, ::-1]
        image[..., 2] = 160
    image += rng.normal(0, 24, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_zip(path, per_class, seed):
    """A zip like the real download: `horses/NAME.png` and `humans/NAME.png`."""
    rng = np.random.default_rng(seed)
    names = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for label in CLASSES:
            for index in range(per_class):
                name = f"{label}/{label[:-1]}{index:02d}-{seed}.png"
                archive.writestr(name, png_bytes(fake_image(label, rng)))
                names.append(name)
    return names


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


def prepare(data_dir):
    """Prepares the fake dataset in `data_dir` with tfds' builder; returns split sizes."""
    import importlib

    import tensorflow_datasets as tfds

    module = importlib.import_module(BUILDER_MODULE)
    # The real URLs must exist here, else the patch below would patch nothing.
    assert module._TRAIN_URL.endswith("/horse-or-human.zip"), module._TRAIN_URL
    assert module._TEST_URL.endswith("/validation-horse-or-human.zip"), module._TEST_URL
    with tempfile.TemporaryDirectory() as folder:
        write_zip(os.path.join(folder, "horse-or-human.zip"), TRAIN_PER_CLASS, seed=0)
        write_zip(
            os.path.join(folder, "validation-horse-or-human.zip"),
            TEST_PER_CLASS,
            seed=1,
        )
        with serve(folder) as url, patched(
            module,
            _TRAIN_URL=f"{url}/horse-or-human.zip",
            _TEST_URL=f"{url}/validation-horse-or-human.zip",
        ):
            builder = tfds.builder("horses_or_humans", data_dir=str(data_dir))
            builder.download_and_prepare()
    return {
        str(name): split.num_examples for name, split in builder.info.splits.items()
    }


if __name__ == "__main__":
    # Requests to 127.0.0.1 must not go through a proxy.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    # The last line of output: the split sizes, as JSON.
    print(json.dumps(prepare(sys.argv[1])))

"""A small fake `horses_or_humans`, prepared offline by tensorflow-datasets' own builder.

`prepare(data_dir)` writes a few generated 300x300 RGB PNGs into a folder laid out
like the real pictures (`train/{horses,humans}/*.png`,
`validation/{horses,humans}/*.png`) and hands it to
benchmarks/tools/prepare_dataset.py, which zips each split as the real downloads
are laid out, serves the zips from 127.0.0.1, points the builder's `_TRAIN_URL` and
`_TEST_URL` at them and runs `download_and_prepare()` into `data_dir`. This runs tfds' real
download-and-prepare path (the one a first real run takes), not
`tfds.testing.mock_data`. Afterwards `data_dir` loads like the real dataset, e.g.
through `TFDS_DATA_DIR`.

Run it as a program (`python tests/fake_dataset.py DATA_DIR`) to keep the
patched module attributes and the server out of the calling process; the test
fixture does that.
"""

import json
import os
import struct
import sys
import tempfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "tools"))

import prepare_dataset  # noqa: E402

# The builder's image feature is (300, 300, 3).
IMAGE_SIZE = 300
CLASSES = prepare_dataset.CLASSES
# Images per split and class: 8 train images and 4 test images in all.
TRAIN_PER_CLASS = 4
TEST_PER_CLASS = 2


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


def write_pictures(pictures, counts, seed=0):
    """Writes generated PNGs into `pictures` laid out like the real pictures.

    `counts` maps a folder of PICTURES ("train", "validation") to the number of
    pictures of each class: an int for both classes, or a {class: number} dict.
    Returns {(split folder, class): [the images written, as arrays]}.
    """
    written = {}
    for index, (split, count) in enumerate(counts.items()):
        rng = np.random.default_rng(seed + index)
        for label in CLASSES:
            folder = os.path.join(pictures, split, label)
            os.makedirs(folder, exist_ok=True)
            images = written.setdefault((split, label), [])
            number = count[label] if isinstance(count, dict) else count
            for picture in range(number):
                image = fake_image(label, rng)
                name = f"{label[:-1]}{picture:02d}-{seed + index}.png"
                with open(os.path.join(folder, name), "wb") as file:
                    file.write(png_bytes(image))
                images.append(image)
    return written


def prepare(data_dir):
    """Prepares the fake dataset in `data_dir` with tfds' builder; returns split sizes."""
    with tempfile.TemporaryDirectory() as pictures:
        write_pictures(
            pictures, {"train": TRAIN_PER_CLASS, "validation": TEST_PER_CLASS}
        )
        return prepare_dataset.prepare(pictures, data_dir)


if __name__ == "__main__":
    # The last line of output: the split sizes, as JSON.
    print(json.dumps(prepare(sys.argv[1])))

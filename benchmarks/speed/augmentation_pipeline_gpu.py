"""On a GPU, is augmenting inside the model faster than the original's host pipeline?

The original example's input pipeline against this project's, one model trained on
the GPU, side by side in one process.

    KERAS_BACKEND=jax python benchmarks/speed/augmentation_pipeline_gpu.py
        [--examples 1027] [--batch-size 128] [--epochs 4] [--gc-steps 20] [--json PATH]

It needs Keras and a GPU, not TensorFlow (the GPU machine it was written for had JAX
and PyTorch only), so both arms run on the JAX backend, on 1,027 random 300x300
images:
- `original`: the original's pipeline as far as it can be without `tf.data`:
  rescale, shuffle, batch, then `RandomFlip`/`RandomRotation`/`RandomZoom` on the
  host CPU in a `keras.utils.PyDataset` with worker threads and a queue (the
  original's parallel `tf.data` map and prefetch), then `fit` on the GPU;
- `project`: the example's `build_training_model()` (rescaling and augmentation
  inside the model, on the GPU), fed shuffled uint8 batches.
Both train the example's CNN with RMSprop. Epoch time is the median of the epochs
after the first (which compiles). `gc_overhead` times GCRMSprop and RMSprop train
steps on one batch, interleaved.
"""

import argparse
import json
import statistics
import sys
import unittest.mock
from pathlib import Path

import jax
import keras
import matplotlib.pyplot  # noqa: F401  (imported before the stubs below)
import numpy as np
import scipy.stats  # noqa: F401
from keras import layers

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# The example imports TensorFlow and tensorflow-datasets for its data pipeline;
# nothing used here needs them, so stand-ins let it import without them.
with unittest.mock.patch.dict(
    sys.modules,
    {
        "tensorflow": unittest.mock.MagicMock(),
        "tensorflow_datasets": unittest.mock.MagicMock(),
    },
):
    import gradient_centralization as gc
from augmentation_pipeline_cpu import interleaved_train_steps  # noqa: E402


class OriginalPipeline(keras.utils.PyDataset):
    """Rescale, shuffle, batch and augment on the host CPU, as the original does."""

    def __init__(self, images, labels, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.order = np.random.permutation(len(labels))
        self.augmentation = [
            layers.RandomFlip("horizontal_and_vertical"),
            layers.RandomRotation(0.3),
            layers.RandomZoom(0.2),
        ]

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index):
        batch = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        with jax.default_device(jax.devices("cpu")[0]):
            x = self.images[batch].astype("float32") / 255.0
            for layer in self.augmentation:
                x = layer(x, training=True)
            return np.asarray(x), self.labels[batch]

    def on_epoch_end(self):
        self.order = np.random.permutation(len(self.labels))


def compiled(model, optimizer_class=keras.optimizers.RMSprop):
    model.compile(
        loss="binary_crossentropy",
        optimizer=optimizer_class(learning_rate=1e-4),
        metrics=["accuracy"],
    )
    return model


def epoch_times(model, data, args, **fit_kwargs):
    time_callback = gc.TimeHistory()
    model.fit(
        data, epochs=args.epochs, callbacks=[time_callback], verbose=2, **fit_kwargs
    )
    return time_callback.times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1027)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--gc-steps", type=int, default=20)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.examples, *gc.input_shape), dtype="uint8")
    labels = rng.integers(0, 2, args.examples).astype("float32")

    keras.utils.set_random_seed(0)
    pipeline = OriginalPipeline(
        images, labels, args.batch_size, workers=8, max_queue_size=10
    )
    original = epoch_times(compiled(gc.build_model()), pipeline, args)
    keras.utils.set_random_seed(0)
    project = epoch_times(
        compiled(gc.build_training_model()),
        images,
        args,
        y=labels,
        batch_size=args.batch_size,
    )
    step_times = interleaved_train_steps(
        gc, images[: args.batch_size], labels[: args.batch_size], args.gc_steps
    )
    steps = {name: statistics.median(times) for name, times in step_times.items()}
    results = {
        "device": str(jax.devices()[0].device_kind),
        "backend": keras.backend.backend(),
        "config": vars(args),
        "epoch_times": {"original": original, "project": project},
        "epoch_time": {
            "original": statistics.median(original[1:]),
            "project": statistics.median(project[1:]),
        },
        "gc_step": steps,
    }
    results["ratios"] = {
        "epoch_time_ratio": results["epoch_time"]["project"]
        / results["epoch_time"]["original"],
        "gc_overhead": steps["gc_rmsprop"] / steps["rmsprop"],
    }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

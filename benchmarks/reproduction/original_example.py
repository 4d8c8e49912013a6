"""What did the original keras.io example's table measure? Its code, run as it is.

    TFDS_DATA_DIR=DIR python benchmarks/reproduction/original_example.py
        [--seeds 1337 1338 1339] [--json PATH]

The training code below is the original's (its Keras 3 version, 2023): the same
input pipeline, model, `GCRMSprop` with its `get_gradients()` hook, and the same two
`fit` calls on one model. Added around it: a seed per run, a count of the hook's
calls, the test split scored after each `fit` (the original builds it and never
uses it), and a JSON report written after every seed.

The original prints the last training epoch's loss and accuracy of each `fit`:
RMSprop 0.5346 / 0.7604, "GC" 0.4014 / 0.8154. If the hook is never called (Keras 3
has no code path that calls `get_gradients`), the second `fit` is ten more epochs
of plain RMSprop on the model the first one trained.
"""

import argparse
import json
import os
import sys
from time import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from keras import layers, ops  # noqa: E402
from keras.optimizers import RMSprop  # noqa: E402
from tensorflow import data as tf_data  # noqa: E402

HOOK_CALLS = []  # One entry per call of the original's get_gradients().


class GCRMSprop(RMSprop):
    """The original's optimizer, unchanged but for the count of calls."""

    def get_gradients(self, loss, params):
        HOOK_CALLS.append(1)
        grads = []
        gradients = super().get_gradients()
        for grad in gradients:
            grad_len = len(grad.shape)
            if grad_len > 1:
                axis = list(range(grad_len - 1))
                grad -= ops.mean(grad, axis=axis, keep_dims=True)
            grads.append(grad)
        return grads


class TimeHistory(keras.callbacks.Callback):
    def on_train_begin(self, logs={}):
        self.times = []

    def on_epoch_begin(self, batch, logs={}):
        self.epoch_time_start = time()

    def on_epoch_end(self, batch, logs={}):
        self.times.append(time() - self.epoch_time_start)


def run_original(seed, epochs=10, batch_size=128):
    """The original's code from loading the data to its two `fit` calls."""
    keras.utils.set_random_seed(seed)
    input_shape = (300, 300, 3)
    AUTOTUNE = tf_data.AUTOTUNE
    train_ds, test_ds = tfds.load(
        name="horses_or_humans",
        split=[tfds.Split.TRAIN, tfds.Split.TEST],
        as_supervised=True,
    )
    rescale = layers.Rescaling(1.0 / 255)
    data_augmentation = [
        layers.RandomFlip("horizontal_and_vertical"),
        layers.RandomRotation(0.3),
        layers.RandomZoom(0.2),
    ]

    def apply_aug(x):
        for aug in data_augmentation:
            x = aug(x)
        return x

    def prepare(ds, shuffle=False, augment=False):
        ds = ds.map(lambda x, y: (rescale(x), y), num_parallel_calls=AUTOTUNE)
        if shuffle:
            ds = ds.shuffle(1024)
        ds = ds.batch(batch_size)
        if augment:
            ds = ds.map(lambda x, y: (apply_aug(x), y), num_parallel_calls=AUTOTUNE)
        return ds.prefetch(buffer_size=AUTOTUNE)

    train_ds = prepare(train_ds, shuffle=True, augment=True)
    test_ds = prepare(test_ds)
    model = keras.Sequential(
        [
            layers.Input(shape=input_shape),
            layers.Conv2D(16, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.Dropout(0.5),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Dropout(0.5),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    optimizer = GCRMSprop(learning_rate=1e-4)
    record = {"seed": seed}
    # The original's first run, then its "GC" run on the same model.
    for name, run_optimizer in (
        ("rmsprop", RMSprop(learning_rate=1e-4)),
        ("gc", optimizer),
    ):
        time_callback = TimeHistory()
        model.compile(
            loss="binary_crossentropy", optimizer=run_optimizer, metrics=["accuracy"]
        )
        history = model.fit(
            train_ds, epochs=epochs, verbose=1, callbacks=[time_callback]
        )
        test = model.evaluate(test_ds, verbose=0, return_dict=True)
        record[name] = {
            "history": {key: history.history[key] for key in ("loss", "accuracy")},
            "epoch_times": time_callback.times,
            "test": {key: test[key] for key in ("loss", "accuracy")},
        }
    record["get_gradients_calls"] = len(HOOK_CALLS)
    return record


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The original example, per seed.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1338, 1339])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        print(f"Seed {seed}")
        runs.append(run_original(seed, args.epochs))
        for name, title in (("rmsprop", "RMSprop"), ("gc", '"GC" (more RMSprop)')):
            figures = runs[-1][name]
            print(
                f"{title}: training loss {figures['history']['loss'][-1]:.4f}, "
                f"accuracy {figures['history']['accuracy'][-1]:.4f}; test loss "
                f"{figures['test']['loss']:.4f}, accuracy {figures['test']['accuracy']:.4f}"
            )
        print(f"get_gradients() calls: {runs[-1]['get_gradients_calls']}")
        if args.json:
            report = {
                "config": {**vars(args), "keras": keras.__version__},
                "runs": runs,
            }
            with open(args.json, "w") as file:
                json.dump(report, file, indent=2)
        keras.backend.clear_session()
    sys.exit(1 if any(run["get_gradients_calls"] for run in runs) else 0)

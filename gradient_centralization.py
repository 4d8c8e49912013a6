"""
Title: Gradient Centralization for Better Training Performance
Author: [Rishit Dagli](https://github.com/Rishit-dagli), Keras 3 rewrite by the gradient-centralization team
Date created: 06/18/21
Last modified: 2026/11/25
Description: Implement Gradient Centralization to improve training performance of DNNs.
Accelerator: GPU
"""

"""
## Introduction

This example implements [Gradient Centralization](https://arxiv.org/abs/2004.01461),
a new optimization technique for Deep Neural Networks by Yong et al., and demonstrates
it on Laurence Moroney's [Horses or Humans
Dataset](https://www.tensorflow.org/datasets/catalog/horses_or_humans). Gradient
Centralization can both speedup training process and improve the final generalization
performance of DNNs. It operates directly on gradients by centralizing the gradient
vectors to have zero mean. Gradient Centralization morever improves the Lipschitzness of
the loss function and its gradient so that the training process becomes more efficient
and stable.

The Keras 3 port of the original example overrode `get_gradients()`, a method Keras 3
never calls, so its "Gradient Centralization" run was plain RMSprop; it also trained
the second model on top of the first one. This version hooks into
`Optimizer.apply()`, which every Keras 3 training path reaches, and gives both runs a
fresh model, the same initial weights, the same data order and the same augmentation.

This example requires `tensorflow_datasets` which can be installed with this command:

```
pip install tensorflow-datasets
```
"""

"""
## Setup
"""

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import sys
from time import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from keras import layers
from keras.optimizers import RMSprop
from scipy import stats

"""
## Prepare the data

For this example, we will be using the [Horses or Humans
dataset](https://www.tensorflow.org/datasets/catalog/horses_or_humans): 1,027 training
and 256 test images of 300x300 pixels, labelled horse (0) or human (1).
tensorflow-datasets downloads it (about 154 MiB) on first use.
"""

dataset_name = "horses_or_humans"
input_shape = (300, 300, 3)
shuffle_buffer = 1024


class DatasetUnavailableError(RuntimeError):
    """The dataset could neither be found on disk nor downloaded."""


def load_data(data_dir=None, mock_examples=None):
    """Returns `(train, test_ds, info)`: `train` is `(images, labels)`, decoded
    once and kept in memory as uint8 (about 280 MB) so that no epoch pays for PNG
    decoding again; `test_ds` is the test split's `(image, label)` dataset, read
    once per evaluation.
    `mock_examples=N` swaps the real dataset for N random examples per split
    (`tfds.testing.mock_data`), which needs no network.
    """
    mocking = (
        tfds.testing.mock_data(num_examples=mock_examples)
        if mock_examples
        else contextlib.nullcontext()
    )
    try:
        with mocking:
            (train_ds, test_ds), info = tfds.load(
                name=dataset_name,
                split=[tfds.Split.TRAIN, tfds.Split.TEST],
                data_dir=data_dir,
                with_info=True,
                as_supervised=True,
            )
            train = decode_split(train_ds)
    except Exception as error:  # tfds raises many types: network, I/O, missing deps.
        raise DatasetUnavailableError(
            f"Could not load the '{dataset_name}' dataset: "
            f"{type(error).__name__}: {error}\n"
            "tensorflow-datasets downloads it (about 154 MiB) the first time it is "
            "used, which needs a network connection. Either:\n"
            "  --data-dir DIR   point at a directory that already holds the prepared "
            "dataset (for example a copy of ~/tensorflow_datasets), or\n"
            "  --mock-data N    run offline on N random examples per split, to check "
            "the installation."
        ) from error
    return train, test_ds, info


def decode_split(ds):
    """Decodes a whole split into one uint8 image tensor and one label tensor."""
    count = int(ds.cardinality())
    images = np.empty((count, *input_shape), "uint8")
    labels = np.empty(count, "float32")
    for index, (image, label) in enumerate(ds.as_numpy_iterator()):
        images[index], labels[index] = image, label
    return tf.constant(images), tf.constant(labels)


"""
We rescale the data to `[0, 1]` and perform simple augmentations to our data: a random
flip, a random rotation of up to 0.3 of a turn either way and a random zoom of up to 20%
in or out, as the Keras layers `RandomFlip("horizontal_and_vertical")`,
`RandomRotation(0.3)` and `RandomZoom(0.2)` describe them.

Instead of three layers that resample each image three times, we compose the three
transforms into one projective transform per image and resample once, with bilinear
interpolation and reflected borders as the layers use. The horizontal and vertical
flips are drawn independently, as `RandomFlip`'s documentation (and Keras 2) says;
Keras 3's `RandomFlip` layer draws one coin for both axes.

The training images are decoded once and kept in memory as uint8; each epoch
shuffles their indices, gathers a batch, then rescales and augments it. Every random
number comes from a seeded, stateless generator, so the two training runs below see
exactly the same batches, in the same order, with the same augmentation.
"""

rotation_factor = 0.3  # fraction of a full turn, either way
zoom_factor = 0.2  # fraction of the image size, in or out


def augmentation_transforms(batch_size, height, width, seed):
    """Draws one flip-rotate-zoom transform per image, in the 8-number form of
    `ImageProjectiveTransformV3` (maps output pixel coordinates to input ones)."""
    draws = tf.random.stateless_uniform([batch_size, 4], seed=seed)
    flip_x = tf.where(draws[:, 0] < 0.5, -1.0, 1.0)
    flip_y = tf.where(draws[:, 1] < 0.5, -1.0, 1.0)
    angle = (2.0 * draws[:, 2] - 1.0) * rotation_factor * 2.0 * math.pi
    scale = 1.0 + (2.0 * draws[:, 3] - 1.0) * zoom_factor
    a0 = scale * flip_x * tf.cos(angle)
    a1 = -scale * flip_x * tf.sin(angle)
    b0 = scale * flip_y * tf.sin(angle)
    b1 = scale * flip_y * tf.cos(angle)
    # Transform about the image centre: input = centre + A @ (output - centre).
    center_x = (tf.cast(width, "float32") - 1.0) / 2.0
    center_y = (tf.cast(height, "float32") - 1.0) / 2.0
    a2 = center_x - a0 * center_x - a1 * center_y
    b2 = center_y - b0 * center_x - b1 * center_y
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def rescale(images):
    return tf.cast(images, "float32") / 255.0


def augment(images, seed):
    """Rescales a uint8 batch to [0, 1] and flips, rotates and zooms each image."""
    batch_size, height, width = tf.unstack(tf.shape(images)[:3])
    transforms = augmentation_transforms(batch_size, height, width, seed)
    augmented = tf.raw_ops.ImageProjectiveTransformV3(
        images=rescale(images),
        transforms=transforms,
        output_shape=[height, width],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return tf.ensure_shape(augmented, images.shape)  # The op loses the static shape.


def prepare_train(images, labels, batch_size, seed):
    """Yields shuffled, augmented batches, one epoch after another without end
    (train with `steps_per_epoch=steps_per_epoch(...)`): `ceil(n / batch_size)`
    batches make one pass over the examples. The same `seed` gives the same batches,
    however many times the pipeline is built."""
    # Shuffling indices, not images, keeps the shuffle buffer tiny; repeating
    # lets `prefetch` prepare the next epoch's first batch during this epoch.
    indices = tf.data.Dataset.range(len(labels)).shuffle(shuffle_buffer, seed=seed)
    indices = indices.batch(batch_size).repeat()
    batch_seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip(indices, batch_seeds).map(
        lambda batch, batch_seed: (
            augment(tf.gather(images, batch), batch_seed),
            tf.gather(labels, batch),
        )
    )
    # One batch at a time: on a CPU, augmentation competes with training for cores.
    return ds.prefetch(1)


def steps_per_epoch(labels, batch_size):
    return math.ceil(len(labels) / batch_size)


def prepare_test(ds, batch_size):
    return ds.batch(batch_size).map(lambda x, y: (rescale(x), y)).prefetch(1)


"""
## Define a model

In this section we will define a Convolutional neural network.

Its `ByteDropout` layers are Keras' `Dropout` with a cheaper mask on the TensorFlow
backend: one random byte per value instead of one float, and the mask kept as
booleans for the backward pass. Each value is still kept with probability
`1 - rate` and scaled by `1 / (1 - rate)`, exactly, whenever `rate` is a multiple of
1/256 (as 0.5 is). On a 2-core CPU this makes a training step of this model about
17% faster and 0.3 GB smaller. Other backends and rates use Keras' own dropout.
"""


def byte_dropout(inputs, threshold, seed):
    """Zeroes each value whose random byte is below `threshold`, scales the rest."""
    scale = 256.0 / (256 - threshold)

    @tf.custom_gradient
    def dropout(x):
        size = tf.size(x)
        words = tf.random.stateless_uniform(
            [(size + 3) // 4], seed=seed, minval=None, maxval=None, dtype="uint32"
        )
        draws = tf.reshape(tf.bitcast(words, "uint8"), [-1])[:size]
        keep = tf.reshape(draws >= threshold, tf.shape(x))

        def grad(upstream):
            return tf.where(keep, upstream * scale, 0.0)

        return tf.where(keep, x * scale, 0.0), grad

    return dropout(inputs)


@keras.saving.register_keras_serializable(package="gradient_centralization")
class ByteDropout(layers.Dropout):
    def call(self, inputs, training=False):
        threshold = self.rate * 256
        if (
            training
            and keras.backend.backend() == "tensorflow"
            and self.noise_shape is None
            and 0 < threshold == int(threshold)
        ):
            return byte_dropout(inputs, int(threshold), self.seed_generator.next())
        return super().call(inputs, training=training)


def build_model(dropout=ByteDropout):
    """The original example's CNN; `dropout=layers.Dropout` builds it with Keras'
    own dropout layer, exactly as the original does."""
    return keras.Sequential(
        [
            layers.Input(shape=input_shape),
            layers.Conv2D(16, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(32, (3, 3), activation="relu"),
            dropout(0.5),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            dropout(0.5),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Flatten(),
            dropout(0.5),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )


"""
## Implement Gradient Centralization

For every weight gradient of rank 2 or more, Gradient Centralization subtracts the mean
of each output neuron's incoming-weight gradient. Keras kernels keep the output axis
last (Dense `(in, out)`, Conv2D `(kh, kw, in, out)`), so that mean is taken over all
axes but the last. Biases and other rank-1 weights are left alone.

Keras 3 optimizers never call `get_gradients()`; every training path (`fit` on
TensorFlow, JAX and PyTorch, `LossScaleOptimizer`, custom loops using
`apply_gradients`) ends in the public `Optimizer.apply(grads, trainable_variables)`.
Centralizing there, before calling the parent, also places it before gradient
clipping and accumulation, as in the paper.

The mixin below works with any Keras optimizer: put it first among the bases.
`gc_conv_only=True` gives the paper's GC-C variant (convolution kernels only). Kernels
whose output axis is *not* last (`Conv*DTranspose`, `DepthwiseConv*`, `Embedding`,
`EinsumDense` and `MultiHeadAttention`) should be excluded with
`exclude_from_gradient_centralization()`. The helper, the mixin and `GCRMSprop` need
only `import re` and `import keras`: copy them as they are.
"""


def centralize_gradient(grad, conv_only=False):
    """Subtracts from `grad` its mean over all axes but the last (the output axis).

    Left unchanged: `None`, rank below 2 (below 3 with `conv_only`), kernels with
    fan-in 1 (centralizing would zero them) and TF `IndexedSlices` (which the
    subtraction would densify). A float16 or bfloat16 gradient is centralized in
    float32, then rounded back, so that its mean is exact on every backend.
    """
    if grad is None or type(grad).__name__ == "IndexedSlices":
        return grad
    rank = len(grad.shape)
    if rank < (3 if conv_only else 2) or all(d == 1 for d in grad.shape[:-1]):
        return grad
    dtype = keras.backend.standardize_dtype(grad.dtype)
    wide = keras.ops.cast(grad, "float32") if dtype in ("float16", "bfloat16") else grad
    mean = keras.ops.mean(wide, axis=tuple(range(rank - 1)), keepdims=True)
    return keras.ops.cast(wide - mean, dtype)


class GradientCentralization:
    """Mixin that centralizes gradients before any Keras optimizer applies them.

    Args:
        gc_conv_only: Boolean. If `True`, only convolution kernels (rank 3 and
            more) are centralized, not dense kernels (the paper's GC-C).
            Defaults to `False`.
        gc_exclude_names: List of strings. A variable whose path matches one of
            them (`re.search`, e.g. `"embeddings"`) is not centralized. Same as calling
            `exclude_from_gradient_centralization(var_names=...)`.
        **kwargs: the wrapped optimizer's own arguments.
    """

    def __init__(self, *args, gc_conv_only=False, gc_exclude_names=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.gc_conv_only = gc_conv_only
        self.exclude_from_gradient_centralization(var_names=gc_exclude_names)

    def exclude_from_gradient_centralization(self, var_list=None, var_names=None):
        """Leaves the gradients of `var_list`, and of variables whose path matches
        one of the patterns `var_names` (`re.search`), as they are. Replaces
        earlier exclusions; call it before the optimizer is built."""
        if self.built:
            raise ValueError("Exclude variables before the optimizer is built.")
        self.gc_excluded_paths = {variable.path for variable in var_list or []}
        self.gc_exclude_names = list(var_names or [])

    def gc_applies_to(self, variable):
        # Keras assigns the "gradient" of such a variable as its new value.
        if variable.overwrite_with_gradient or variable.path in self.gc_excluded_paths:
            return False
        return not any(re.search(name, variable.path) for name in self.gc_exclude_names)

    def build(self, var_list):
        super().build(var_list)
        # For `apply(grads)` without variables, as the JAX trainer calls it.
        self.gc_flags = [self.gc_applies_to(variable) for variable in var_list]

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            flags = self.gc_flags if self.built else []
        else:
            flags = [self.gc_applies_to(variable) for variable in trainable_variables]
        if len(flags) == len(grads):  # Otherwise the parent raises the error.
            grads = [
                centralize_gradient(g, self.gc_conv_only) if flag else g
                for g, flag in zip(grads, flags)
            ]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {
            **super().get_config(),
            "gc_conv_only": self.gc_conv_only,
            "gc_exclude_names": self.gc_exclude_names,
        }


@keras.saving.register_keras_serializable(package="gradient_centralization")
class GCRMSprop(GradientCentralization, keras.optimizers.RMSprop):
    """RMSprop with Gradient Centralization; takes `RMSprop`'s arguments and the
    `GradientCentralization` ones."""


"""
We will also create a callback which allows us to easily measure the total training
time and the time taken for each epoch since we are interested in comparing the effect
of Gradient Centralization on the model we built above.
"""


class TimeHistory(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_time_start = time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time() - self.epoch_time_start)


"""
## Train the model without GC

We now train the model we built earlier without Gradient Centralization which we can
compare to the training performance of the model trained with Gradient Centralization.

Each training run starts by seeding every random generator from the same seed, then
builds a fresh model: both runs of a pair start from identical weights, draw the same
dropout masks and see the same shuffled, augmented batches. The optimizer is the only
difference. Each run then evaluates its model on the test split.
"""


def weights_fingerprint(model):
    """A short hash of all weights, to show that two models start out identical."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def train_arm(optimizer_class, data, config, seed, strategy):
    """Trains a freshly built, seeded model with `optimizer_class`; returns its record."""
    (train_images, train_labels), test_ds = data
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_model()
        model.compile(
            loss="binary_crossentropy",
            optimizer=optimizer_class(learning_rate=config["learning_rate"]),
            metrics=["accuracy"],
        )
    initial_weights = weights_fingerprint(model)
    train_ds = prepare_train(train_images, train_labels, config["batch_size"], seed)
    time_callback = TimeHistory()
    history = model.fit(
        train_ds,
        epochs=config["epochs"],
        steps_per_epoch=steps_per_epoch(train_labels, config["batch_size"]),
        callbacks=[time_callback],
    )
    test = model.evaluate(
        prepare_test(test_ds, config["batch_size"]),
        verbose=0,
        return_dict=True,
    )
    return {
        "history": {k: [float(v) for v in history.history[k]] for k in ("loss", "accuracy")},
        "epoch_times": time_callback.times,
        "training_time": sum(time_callback.times),
        "test": {"loss": float(test["loss"]), "accuracy": float(test["accuracy"])},
        "initial_weights": initial_weights,
    }


"""
## Train the model with GC

We will now train the same model, this time using Gradient Centralization: a second
call of `train_arm()` with the same seed, `GCRMSprop` in place of `RMSprop`.
"""

arms = {
    "rmsprop": ("Not using Gradient Centralization", RMSprop),
    "gc_rmsprop": ("Using Gradient Centralization", GCRMSprop),
}


def train_pair(data, config, seed, strategy, header):
    """Trains both arms from `seed`; returns `{arm key: record}`."""
    records = {}
    for key, (_, optimizer_class) in arms.items():
        print(f"\n{header} · {optimizer_class.__name__}")
        records[key] = train_arm(optimizer_class, data, config, seed, strategy)
    return records


"""
## Comparing performance

A table for each pair of runs, then, over all pairs, the mean and standard deviation
of each figure and the paired difference GC minus plain RMSprop of the test accuracy
and loss, with a 95% confidence interval (paired t-interval). A difference whose
interval excludes zero is called significant. One pair of runs is one sample: it
supports no claim either way.
"""

rows = [
    ("Training loss", "train_loss", "{:.4f}"),
    ("Training accuracy", "train_accuracy", "{:.4f}"),
    ("Test loss", "test_loss", "{:.4f}"),
    ("Test accuracy", "test_accuracy", "{:.4f}"),
    ("Training time (s)", "training_time", "{:.1f}"),
    ("Mean epoch time (s)", "mean_epoch_time", "{:.2f}"),
]


def arm_figures(record):
    return {
        "train_loss": record["history"]["loss"][-1],
        "train_accuracy": record["history"]["accuracy"][-1],
        "test_loss": record["test"]["loss"],
        "test_accuracy": record["test"]["accuracy"],
        "training_time": record["training_time"],
        "mean_epoch_time": record["training_time"] / len(record["epoch_times"]),
    }


def table_line(label, cells):
    """One line of a table with a column per arm."""
    return f"{label:<22}" + "".join(f"{cell:>36}" for cell in cells)


table_header = table_line("", [title for title, _ in arms.values()])


def format_table(records):
    figures = [arm_figures(records[key]) for key in arms]
    lines = [table_header]
    for label, key, fmt in rows:
        lines.append(table_line(label, [fmt.format(f[key]) for f in figures]))
    return "\n".join(lines)


summary_figures = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "training_time")
# For each compared figure, whether a larger GC-minus-plain difference is better.
compared_figures = {"test_accuracy": True, "test_loss": False}


def mean_std(values):
    """Mean and sample standard deviation (`None` for a single value)."""
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
    }


def paired_difference(differences, confidence=0.95):
    """Mean of paired differences and its t-interval (`None` for one pair)."""
    mean = float(np.mean(differences))
    if len(differences) < 2:
        return {"mean": mean, "ci95": None}
    half_width = stats.t.ppf((1 + confidence) / 2, len(differences) - 1) * stats.sem(
        differences
    )
    return {"mean": mean, "ci95": [mean - half_width, mean + half_width]}


def verdict(difference, higher_is_better):
    if difference["ci95"] is None:
        return "single run"
    low, high = difference["ci95"]
    if low > 0 or high < 0:
        return "better" if (low > 0) == higher_is_better else "worse"
    return "no significant difference"


def summarize(runs):
    figures = {key: [arm_figures(run["arms"][key]) for run in runs] for key in arms}
    summary = {
        key: {name: mean_std([f[name] for f in figures[key]]) for name in summary_figures}
        for key in arms
    }
    summary["difference"] = {
        name: paired_difference(
            [gc[name] - plain[name] for gc, plain in zip(figures["gc_rmsprop"], figures["rmsprop"])]
        )
        for name in compared_figures
    }
    summary["verdict"] = {
        name: verdict(summary["difference"][name], higher_is_better)
        for name, higher_is_better in compared_figures.items()
    }
    return summary


def format_summary(summary, num_runs):
    lines = [f"Summary over {num_runs} paired run(s): mean ± standard deviation", table_header]
    for label, name, fmt in rows:
        if name in summary_figures:
            stats_per_arm = [summary[key][name] for key in arms]
            cells = [
                fmt.format(s["mean"]) + " ± " + ("n/a" if s["std"] is None else fmt.format(s["std"]))
                for s in stats_per_arm
            ]
            lines.append(table_line(label, cells))
    for name in compared_figures:
        difference, outcome = summary["difference"][name], summary["verdict"][name]
        line = f"{name}, GC - plain: {difference['mean']:+.4f}"
        if difference["ci95"] is None:
            line += "; a single run supports no claim (--runs N with N >= 2 gives an interval)"
        else:
            low, high = difference["ci95"]
            verdict_text = f"GC {outcome}" if outcome in ("better", "worse") else outcome
            line += f", 95% CI [{low:+.4f}, {high:+.4f}]: {verdict_text}"
        lines.append(line)
    return "\n".join(lines)


"""
Finally, a picture: per-epoch training loss and accuracy of both optimizers (the mean
over runs, with a band from the lowest to the highest run when there are several) and
the test accuracy of every run.
"""


def plot_report(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    test_accuracies = np.array(
        [[run["arms"][key]["test"]["accuracy"] for key in arms] for run in runs]
    )
    for position, ((key, (title, _)), color) in enumerate(zip(arms.items(), ("tab:blue", "tab:orange"))):
        for axis, metric in zip(axes[:2], ("loss", "accuracy")):
            curves = np.array([run["arms"][key]["history"][metric] for run in runs])
            epochs = np.arange(1, curves.shape[1] + 1)
            axis.plot(epochs, curves.mean(axis=0), color=color, marker="o", label=title)
            if len(runs) > 1:
                axis.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.2)
        axes[2].scatter([position] * len(runs), test_accuracies[:, position], color=color, zorder=3)
        axes[2].errorbar(position, test_accuracies[:, position].mean(), fmt="_", color="black", markersize=30)
    # A grey line joins the two optimizers' results of the same run (same seed).
    axes[2].plot(range(len(arms)), test_accuracies.T, color="grey", alpha=0.5)
    for axis, metric in zip(axes[:2], ("loss", "accuracy")):
        axis.set(xlabel="epoch", ylabel=f"training {metric}", title=f"Training {metric}")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.legend()
    axes[2].set(
        xticks=range(len(arms)),
        xticklabels=["RMSprop", "GCRMSprop"],
        xlim=(-0.5, len(arms) - 0.5),
        ylabel="test accuracy",
        title="Test accuracy (dots: runs, joined by seed; bar: mean)",
    )
    bands = "; bands: lowest to highest run" if len(runs) > 1 else ""
    fig.suptitle(f"Gradient Centralization, {len(runs)} paired run(s) (lines: mean over runs{bands})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


"""
## Run it all

`python gradient_centralization.py --help` lists the options; the defaults reproduce
the original example (10 epochs, batch 128, learning rate 1e-4).
"""


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train the horses-or-humans CNN with RMSprop and with GCRMSprop "
        "(Gradient Centralization) and compare them."
    )
    parser.add_argument("--epochs", type=positive(int), default=10, help="epochs per training run (default: 10)")
    parser.add_argument("--batch-size", type=positive(int), default=128, help="batch size (default: 128)")
    parser.add_argument("--learning-rate", type=positive(float), default=1e-4, help="RMSprop learning rate (default: 1e-4)")
    parser.add_argument("--seed", type=int, default=1337, help="seed of the first pair of runs; run i uses seed + i (default: 1337)")
    parser.add_argument("--runs", type=positive(int), default=1, help="paired runs of both optimizers (default: 1)")
    parser.add_argument("--data-dir", help="tensorflow-datasets data directory (default: ~/tensorflow_datasets)")
    parser.add_argument(
        "--mock-data", type=positive(int), metavar="N",
        help="use N random examples per split instead of the real dataset; works offline",
    )
    parser.add_argument(
        "--distribute", choices=("auto", "none", "mirrored"), default="auto",
        help="'mirrored' trains under tf.distribute.MirroredStrategy on all GPUs (all "
        "CPU devices if there is none); 'auto' does so when more than one GPU is "
        "visible (TensorFlow backend only; default: auto)",
    )
    parser.add_argument(
        "--dtype-policy", choices=("float32", "mixed_bfloat16", "mixed_float16"), default="float32",
        help="Keras dtype policy of both models; the mixed ones are faster where the "
        "hardware supports them (bfloat16: recent x86 CPUs, TPUs, NVIDIA Ampere and "
        "later; float16: NVIDIA GPUs) (default: float32, as the original)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON to PATH")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of the training curves to PATH")
    args = parser.parse_args(argv)
    if args.distribute == "mirrored" and keras.backend.backend() != "tensorflow":
        parser.error("--distribute mirrored needs KERAS_BACKEND=tensorflow")
    return args


def make_strategy(distribute):
    if keras.backend.backend() != "tensorflow":
        return NoStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if distribute == "mirrored" or (distribute == "auto" and len(gpus) > 1):
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


class NoStrategy:
    """Stands in for `tf.distribute`'s default strategy on the JAX and torch backends."""

    def scope(self):
        return contextlib.nullcontext()


def main(argv=None):
    args = parse_args(argv)
    try:
        train, test, info = load_data(args.data_dir, args.mock_data)
    except DatasetUnavailableError as error:
        print(error, file=sys.stderr)
        return 1
    keras.config.set_dtype_policy(args.dtype_policy)
    print(f"Image shape: {info.features['image'].shape}")
    print(f"Training images: {len(train[1])}")
    print(f"Test images: {int(test.cardinality())}")
    build_model().summary()

    config = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "mock_data": args.mock_data,
        "runs": args.runs,
        "dtype_policy": args.dtype_policy,
        "backend": keras.backend.backend(),
    }
    strategy = make_strategy(args.distribute)
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        print(f"Training with MirroredStrategy on {strategy.num_replicas_in_sync} device(s)")
    runs = []
    for index in range(args.runs):
        seed = args.seed + index
        header = f"run {index + 1}/{args.runs}"
        records = train_pair((train, test), config, seed, strategy, header)
        runs.append({"seed": seed, "arms": records})
        print(f"\n{header} (seed {seed})\n{format_table(records)}")
    report = {"config": config, "runs": runs, "summary": summarize(runs)}
    print("\n" + format_summary(report["summary"], args.runs))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
    if args.plot:
        plot_report(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""
Title: Gradient Centralization for Better Training Performance
Author: [Rishit Dagli](https://github.com/Rishit-dagli), Keras 3 rewrite by the gradient-centralization team
Date created: 06/18/21
Last modified: 2026/11/26
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

An earlier Keras 3 port of this example overrode `get_gradients()`, a method Keras 3
never calls: its "Gradient Centralization" run was plain RMSprop, and it trained the
second model on top of the first. Here the optimizer centralizes in
`Optimizer.apply()`, which every Keras 3 training path reaches, and both runs start
from a fresh model with the same weights, batches, augmentation and dropout draws.

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
import tempfile
import warnings
from time import time

# TensorFlow's C++ libraries log a few lines while they load, before any log setting
# applies: hide them during the imports only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
stderr_fd, devnull_fd = os.dup(2), os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull_fd, 2)
try:
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds
finally:
    os.dup2(stderr_fd, 2)
    os.close(stderr_fd)
    os.close(devnull_fd)
from absl import logging as absl_logging
from keras import layers, ops
from keras.optimizers import RMSprop
from scipy import stats

tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)
absl_logging.set_verbosity("error")
# Our datasets are shuffled by tf.data, which is what this warning asks for.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")

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
AUTOTUNE = tf.data.AUTOTUNE


class DatasetUnavailableError(RuntimeError):
    """The dataset could neither be found on disk nor downloaded."""


def load_data(data_dir=None, mock_examples=None):
    """Returns `(train_ds, test_ds)` of `(uint8 image, label)` pairs, and the info.

    The training images are decoded once and cached in memory (about 280 MB).
    `mock_examples=N` swaps the dataset for N random examples per split, offline.
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
            train_ds = train_ds.cache()
            for _ in train_ds:  # Fill the cache now, so no run's first epoch pays.
                pass
    except Exception as error:  # tfds raises many types: network, I/O, missing deps.
        raise DatasetUnavailableError(
            f"Could not load '{dataset_name}': {type(error).__name__}: {error}\n"
            f"The first run downloads it (about 154 MiB), which needs a network. Or:\n"
            f"  --data-dir DIR  a directory that holds it (a copy of "
            f"~/tensorflow_datasets)\n"
            f"  --mock-data N   N random images per split, to check the installation"
        ) from error
    return (train_ds, test_ds), info


"""
We rescale the data to `[0, 1]` and perform simple augmentations to our data: the
original uses `RandomFlip("horizontal_and_vertical")`, `RandomRotation(0.3)` and
`RandomZoom(0.2)`. Those three layers resample every image three times; the layer
below composes the three transforms into one and resamples once, with the same
bilinear interpolation and reflected borders, and the same random distribution: a
rotation of up to 0.3 of a turn either way, a zoom of up to 20% in or out and, as
Keras 3's `RandomFlip("horizontal_and_vertical")` does, one coin per image that flips
it along both axes or leaves it alone.

Rescaling and augmentation are layers of the model, so they run on the device that
trains (Keras' advice for GPU training) and draw their random numbers from seeds like
`Dropout` does. The `tf.data` pipeline only shuffles, batches and prefetches cached
uint8 images.
"""


class RandomFlipRotateZoom(layers.Layer):
    """Randomly flips, rotates and zooms images during training, in one resampling.

    Args:
        rotation_factor: Float, the largest rotation, as a fraction of a full turn.
        zoom_factor: Float, the largest zoom in or out, as a fraction of the size.
        seed: Integer, seed of the random draws.
    """

    def __init__(self, rotation_factor=0.3, zoom_factor=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_factor = rotation_factor
        self.zoom_factor = zoom_factor
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        draws = keras.random.uniform(
            (3, ops.shape(images)[0]), seed=self.seed_generator
        )
        flip = ops.where(draws[0] < 0.5, -1.0, 1.0)  # -1: flipped along both axes.
        angle = (2 * draws[1] - 1) * self.rotation_factor * 2 * math.pi
        scale = flip * (1 + (2 * draws[2] - 1) * self.zoom_factor)
        cos, sin = scale * ops.cos(angle), scale * ops.sin(angle)
        # Each output pixel samples input = centre + [[cos, -sin], [sin, cos]] @
        # (output - centre).
        center_y, center_x = (images.shape[1] - 1) / 2, (images.shape[2] - 1) / 2
        offset_x = center_x - cos * center_x + sin * center_y
        offset_y = center_y - sin * center_x - cos * center_y
        zeros = ops.zeros_like(cos)
        transforms = ops.stack(
            [cos, -sin, offset_x, sin, cos, offset_y, zeros, zeros], axis=1
        )
        return ops.image.affine_transform(
            images, ops.cast(transforms, images.dtype), fill_mode="reflect"
        )

    def get_config(self):
        return {
            **super().get_config(),
            "rotation_factor": self.rotation_factor,
            "zoom_factor": self.zoom_factor,
            "seed": self.seed,
        }


"""
## Define a model

In this section we will define a Convolutional neural network.
"""


def build_model():
    return keras.Sequential(
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


"""
We train the CNN behind the rescaling and augmentation layers; they have no weights,
so the model trained is the CNN above, with 1,704,097 parameters.
"""


def build_training_model():
    return keras.Sequential(
        [
            layers.Input(shape=input_shape, dtype="uint8"),
            layers.Rescaling(1.0 / 255),
            RandomFlipRotateZoom(rotation_factor=0.3, zoom_factor=0.2),
            build_model(),
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
`exclude_from_gradient_centralization()`. The helper, the mixin and `GCRMSprop` use
only public Keras APIs and need only `import re` and `import keras`: copy them as they
are.
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

Each training run seeds every random generator from the same seed, then builds a
fresh model: both runs of a pair start from identical weights, see the same shuffled
batches and draw the same augmentations and dropout masks. The optimizer is the only
difference. Each run then evaluates its model on the test split.
"""


def weights_fingerprint(model):
    """A short hash of all weights, to show that two models start out identical."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def train_arm(optimizer_class, data, config, seed):
    """Trains a freshly built, seeded model with `optimizer_class`; returns its record."""
    train_ds, test_ds = data
    batch_size = config["batch_size"]
    keras.utils.set_random_seed(seed)
    model = build_training_model()
    model.compile(
        loss="binary_crossentropy",
        optimizer=optimizer_class(learning_rate=config["learning_rate"]),
        metrics=["accuracy"],
    )
    initial_weights = weights_fingerprint(model)
    time_callback = TimeHistory()
    # One pass over the shuffled images per epoch. Repeating keeps one iterator for
    # all epochs: on a 2-core CPU, a new iterator each epoch made some epochs twice
    # as slow.
    train_batches = train_ds.shuffle(shuffle_buffer, seed=seed).batch(batch_size)
    history = model.fit(
        train_batches.repeat().prefetch(AUTOTUNE),
        epochs=config["epochs"],
        steps_per_epoch=math.ceil(len(train_ds) / batch_size),
        callbacks=[time_callback],
    )
    test = model.evaluate(
        test_ds.batch(batch_size).prefetch(AUTOTUNE), verbose=0, return_dict=True
    )
    return {
        "history": {
            k: [float(v) for v in history.history[k]] for k in ("loss", "accuracy")
        },
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


def train_pair(data, config, seed, header):
    """Trains both arms from `seed`; returns `{arm key: record}`."""
    records = {}
    for key, (_, optimizer_class) in arms.items():
        print(f"\n{header} · {optimizer_class.__name__}")
        records[key] = train_arm(optimizer_class, data, config, seed)
    return records


"""
## Comparing performance

A table for each pair of runs, then, over all pairs, the mean and standard deviation
of each figure and the paired difference GC minus plain RMSprop of the test accuracy
and loss, with a 95% confidence interval (paired t-interval). A difference whose
interval excludes zero is called significant. If a run diverged (NaN or infinite
loss), the interval is undefined, and so is the verdict.
"""

rows = [
    ("Training loss", "train_loss", 4),
    ("Training accuracy", "train_accuracy", 4),
    ("Test loss", "test_loss", 4),
    ("Test accuracy", "test_accuracy", 4),
    ("Training time (s)", "training_time", 1),
    ("Mean epoch time (s)", "mean_epoch_time", 2),
]
# For each compared figure, whether a larger GC-minus-plain difference is better.
compared_figures = {"test_accuracy": True, "test_loss": False}


def arm_figures(record):
    return {
        "train_loss": record["history"]["loss"][-1],
        "train_accuracy": record["history"]["accuracy"][-1],
        "test_loss": record["test"]["loss"],
        "test_accuracy": record["test"]["accuracy"],
        "training_time": record["training_time"],
        "mean_epoch_time": record["training_time"] / len(record["epoch_times"]),
    }


def format_number(value, decimals, sign="-"):
    """Fixed-point, or scientific where that would not fit a table column."""
    text = f"{value:{sign}.{decimals}f}"
    return text if len(text) <= 10 else f"{value:{sign}.3e}"


def table(lines):
    """Lines of `(label, [cell per arm])` under a header, in aligned columns."""
    header = [("", [title for title, _ in arms.values()])]
    return "\n".join(
        f"{label:<22}" + "".join(f"{cell:>36}" for cell in cells)
        for label, cells in header + lines
    )


def format_run(records):
    figures = [arm_figures(records[key]) for key in arms]
    return table(
        [
            (label, [format_number(f[name], decimals) for f in figures])
            for label, name, decimals in rows
        ]
    )


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
    t = stats.t.ppf((1 + confidence) / 2, len(differences) - 1)
    half_width = float(t * stats.sem(differences))
    return {"mean": mean, "ci95": [mean - half_width, mean + half_width]}


def verdict(difference, higher_is_better):
    if difference["ci95"] is None:
        return "single run"
    low, high = difference["ci95"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return "undefined"
    if low > 0 or high < 0:
        return "better" if (low > 0) == higher_is_better else "worse"
    return "no significant difference"


def summarize(runs):
    figures = {key: [arm_figures(run["arms"][key]) for run in runs] for key in arms}
    summary = {
        key: {name: mean_std([f[name] for f in figures[key]]) for _, name, _ in rows}
        for key in arms
    }
    summary["difference"], summary["verdict"] = {}, {}
    for name, higher_is_better in compared_figures.items():
        pairs = zip(figures["gc_rmsprop"], figures["rmsprop"])
        difference = paired_difference([gc[name] - plain[name] for gc, plain in pairs])
        summary["difference"][name] = difference
        summary["verdict"][name] = verdict(difference, higher_is_better)
    return summary


def format_stat(stat, decimals):
    std = "n/a" if stat["std"] is None else format_number(stat["std"], decimals)
    return f"{format_number(stat['mean'], decimals)} ± {std}"


unclear_outcomes = {
    "single run": "a single run supports no claim (--runs N, N >= 2, gives an interval)",
    "undefined": "undefined: a run diverged (NaN or infinite values), so no interval",
}


def format_summary(summary, num_runs):
    lines = [
        (label, [format_stat(summary[key][name], decimals) for key in arms])
        for label, name, decimals in rows
    ]
    text = [f"Summary over {num_runs} paired run(s): mean ± std", table(lines)]
    for name in compared_figures:
        difference, outcome = summary["difference"][name], summary["verdict"][name]
        line = f"{name}, GC - plain: {format_number(difference['mean'], 4, '+')}"
        if outcome in unclear_outcomes:
            line += "; " + unclear_outcomes[outcome]
        else:
            low, high = (format_number(bound, 4, "+") for bound in difference["ci95"])
            outcome = f"GC {outcome}" if outcome in ("better", "worse") else outcome
            line += f", 95% CI [{low}, {high}]: {outcome}"
        text.append(line)
    return "\n".join(text)


"""
Finally, a picture: the training loss and accuracy of both optimizers, epoch by epoch
(the mean over runs, with a band from the lowest to the highest run when there are
several).
"""


def plot_report(report):
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, (title, _) in arms.items():
        for axis, metric in zip(axes, ("loss", "accuracy")):
            curves = np.array(
                [r["arms"][key]["history"][metric] for r in report["runs"]]
            )
            epochs = np.arange(1, curves.shape[1] + 1)
            (line,) = axis.plot(epochs, curves.mean(axis=0), marker="o", label=title)
            if len(curves) > 1:
                low, high = curves.min(axis=0), curves.max(axis=0)
                axis.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2)
            axis.set(xlabel="Epoch", title=f"Training {metric}")
            axis.xaxis.get_major_locator().set_params(integer=True)
            axis.legend()
    figure.suptitle(f"{len(report['runs'])} paired run(s)")
    return figure


"""
## Run it all

In a notebook this cell trains with the defaults below, which reproduce the original
example (10 epochs, batch 128, learning rate 1e-4). From a shell, `python
gradient_centralization.py --help` lists the options: `--runs N` trains N pairs from
seeds `S, S+1, ...` for a confidence interval, `--json` writes the report after every
pair, `--plot` saves the picture.
"""


dtype_policies = ("float32", "mixed_bfloat16", "mixed_float16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train the example's CNN with RMSprop, then with GCRMSprop, "
        "from the same start, and compare them."
    )
    add = parser.add_argument
    add("--epochs", type=int, default=10, help="epochs per run (10)")
    add("--batch-size", type=int, default=128, help="batch size (128)")
    add("--learning-rate", type=float, default=1e-4, help="(1e-4)")
    add("--seed", type=int, default=1337, help="seed of the first pair (1337)")
    add("--runs", type=int, default=1, help="pairs of runs (1)")
    add("--data-dir", help="tensorflow-datasets data_dir (~/tensorflow_datasets)")
    add("--mock-data", type=int, metavar="N", help="N random images a split")
    add("--dtype-policy", default="float32", choices=dtype_policies, help="(float32)")
    add("--json", metavar="PATH", help="write the report as JSON after every pair")
    add("--plot", metavar="PATH", help="save the training curves as an image")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "learning_rate", "runs", "mock_data"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be greater than 0")
    for path in (args.json, args.plot):
        folder = os.path.dirname(os.path.abspath(path or "."))
        if path and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            parser.error(f"cannot write {path}: {folder} is not a writable folder")
    return args


def write_json(report, path):
    """Writes to a temporary file, then renames it: `path` is never half written."""
    folder = os.path.dirname(os.path.abspath(path))
    # Strict JSON has no NaN or Infinity: a diverged run's values become null.
    report = json.loads(json.dumps(report), parse_constant=lambda name: None)
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False) as file:
        json.dump(report, file, indent=2, allow_nan=False)
    os.replace(file.name, path)


def main(argv=None):
    args = parse_args(argv)
    runs = []  # The finished pairs, which an interruption keeps.
    try:
        return compare(args, runs)
    except KeyboardInterrupt:
        kept = f"{len(runs)} finished pair(s) kept in {args.json}"
        print(
            f"\nInterrupted: {kept if args.json and runs else 'no report written'}.",
            file=sys.stderr,
        )
        return 130


def compare(args, runs):
    """Loads the data, trains `args.runs` pairs into `runs`, prints the comparison."""
    try:
        data, info = load_data(args.data_dir, args.mock_data)
    except DatasetUnavailableError as error:
        print(error, file=sys.stderr)
        return 1
    keras.config.set_dtype_policy(args.dtype_policy)
    print(f"Image shape: {info.features['image'].shape}")
    print(f"Training images: {len(data[0])}")
    print(f"Test images: {len(data[1])}")
    build_model().summary()

    config = {**vars(args), "backend": keras.backend.backend()}
    for index in range(args.runs):
        seed = args.seed + index
        header = f"run {index + 1}/{args.runs}"
        runs.append({"seed": seed, "arms": train_pair(data, config, seed, header)})
        print(f"\n{header} (seed {seed})\n{format_run(runs[-1]['arms'])}")
        report = {"config": config, "runs": runs, "summary": summarize(runs)}
        if args.json:
            write_json(report, args.json)
    print("\n" + format_summary(report["summary"], args.runs))
    figure = plot_report(report)  # A notebook shows it under this cell.
    if args.plot:
        figure.savefig(args.plot, dpi=100)
    return 0


if __name__ == "__main__":
    # A notebook's sys.argv holds the Jupyter kernel's own flags, not ours.
    if "ipykernel" in sys.modules:
        main([])
    else:
        sys.exit(main())

"""
## Conclusion

Gradient Centralization is a few lines in `Optimizer.apply()`, and it works with any
Keras 3 optimizer, backend and training loop. Whether it helps *this* model on *this*
dataset is what the comparison above measures, with limits: one pair of runs is one
sample, and on 1,027 images a few points of test accuracy between two seeds is
ordinary noise. Run `python gradient_centralization.py --runs 5` for an interval on
the difference; an interval that contains zero means the runs cannot tell the
optimizers apart, not that they are equal. Training time compares the cost of the two
optimizers on your machine; the centralization itself costs a mean per kernel.

Readers are encouraged to try out Gradient Centralization on different datasets from
different domains and experiment with its effect. You are strongly advised to check out
the [original paper](https://arxiv.org/abs/2004.01461) as well: the authors present
several studies on Gradient Centralization showing how it can improve general
performance, generalization, training time as well as more efficient.

Many thanks to [Ali Mustufa Shaikh](https://github.com/ialimustufa) for reviewing this
implementation.
"""

"""Does GCRMSprop train better than RMSprop on real images (scikit-learn's digits)?

GCRMSprop against RMSprop, offline, on scikit-learn's bundled handwritten digits
(1,797 grayscale 8x8 images, 10 classes; not horses_or_humans).

    python benchmarks/experiments/digits_gc_vs_rmsprop.py [--seeds 10] [--epochs 10]
        [--json PATH]

For each seed, both arms start from the same initial weights and see the same
batches in the same order; the optimizer is the only difference. Printed per metric:
the mean paired difference (GCRMSprop minus RMSprop) with its 95% interval and the
verdict, from the example's own `paired_difference` and `verdict`. `--json PATH`
also writes every seed's figures, the summary, and when (UTC), from which commit and
with which versions the run was made (`produced`).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from gradient_centralization import GCRMSprop, paired_difference, verdict  # noqa: E402

LEARNING_RATE = 1e-3
BATCH_SIZE = 32
# Metric name -> whether a larger GC-minus-plain difference is better.
METRICS = {"test_accuracy": True, "final_train_loss": False}


def load_data():
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1)
    return train_test_split(
        images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )


def build_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def train_arm(optimizer, initial_weights, orders, data, build=build_model):
    """Trains a `build()` model from `initial_weights`, one epoch per index order;
    returns its metrics."""
    x_train, x_test, y_train, y_test = data
    model = build()
    model.set_weights(initial_weights)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    for order in orders:
        history = model.fit(
            x_train[order],
            y_train[order],
            batch_size=BATCH_SIZE,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
    test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    return {
        "test_accuracy": float(test["accuracy"]),
        "final_train_loss": float(history.history["loss"][-1]),
    }


def parse_args(description, argv=None):
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args(argv)


def paired_runs(arms, build, args, data, report):
    """For each seed, every arm (name: optimizer factory) trained from the same
    initial weights on the same batch order; `report(run)` after each seed."""
    runs = []
    for seed in range(args.seeds):
        keras.utils.set_random_seed(seed)
        initial_weights = build().get_weights()
        rng = np.random.default_rng(seed)
        orders = [rng.permutation(len(data[0])) for _ in range(args.epochs)]
        run = {"seed": seed}
        for arm, make_optimizer in arms.items():
            run[arm] = train_arm(make_optimizer(), initial_weights, orders, data, build)
        runs.append(run)
        report(run)
    return runs


def git(*arguments):
    """The output of a git command in this repository, or None without git."""
    try:
        result = subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def provenance():
    """When (UTC) and from which commit a result was produced, and with what."""
    changed = git("diff", "--name-only", "HEAD")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "commit": git("rev-parse", "HEAD"),
        # Tracked files that differed from that commit when this was taken.
        "uncommitted_changes": (None if changed is None else changed.splitlines()),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
    }


def relative(path):
    """`path` relative to the repository root when it lies inside it; as given
    otherwise."""
    if path is None:
        return None
    inside = os.path.relpath(os.path.abspath(path), ROOT)
    return path if inside.startswith(os.pardir) else inside


def write_json(args, runs, summary, produced=None):
    """Writes the results, with `produced` (`provenance()`, taken now if None)."""
    if args.json:
        produced = produced or provenance()
        config = {**vars(args), "json": relative(args.json)}
        results = {"produced": produced, "args": config}
        with open(args.json, "w") as file:
            json.dump({**results, "runs": runs, "summary": summary}, file, indent=1)


def compare(differences, higher_is_better):
    """The mean paired difference, its 95% interval and verdict, and the interval
    as printed."""
    difference = paired_difference(differences)
    interval = (
        "n/a"
        if difference["ci95"] is None
        else "[{:+.4f}, {:+.4f}]".format(*difference["ci95"])
    )
    return {**difference, "verdict": verdict(difference, higher_is_better)}, interval


def seed_printer(arms):
    """A `paired_runs` report that prints each arm's test accuracy of a seed."""

    def print_seed(run):
        accuracies = ", ".join(f"{arm} {run[arm]['test_accuracy']:.4f}" for arm in arms)
        print(f"seed {run['seed']}: test accuracy {accuracies}", flush=True)

    return print_seed


def compare_with(reference, arms, runs):
    """Prints each arm's mean of each metric, and each other arm's paired difference
    from `reference` with its 95% interval and verdict; returns the differences."""
    summary = {}
    for metric, higher_is_better in METRICS.items():
        for arm in arms:
            mean = float(np.mean([run[arm][metric] for run in runs]))
            print(f"{metric}, {arm}: mean {mean:.4f}")
            if arm == reference:
                continue
            name = f"{metric}: {arm} - {reference}"
            summary[name], interval = compare(
                [run[arm][metric] - run[reference][metric] for run in runs],
                higher_is_better,
            )
            print(
                f"  {arm} - {reference} = {summary[name]['mean']:+.4f}, "
                f"95% CI {interval}: {arm} {summary[name]['verdict']}"
            )
    return summary


ARMS = {
    "rmsprop": lambda: keras.optimizers.RMSprop(LEARNING_RATE),
    "gc_rmsprop": lambda: GCRMSprop(LEARNING_RATE),
}


def print_run(run):
    print(
        f"seed {run['seed']}: test accuracy {run['rmsprop']['test_accuracy']:.4f} -> "
        f"{run['gc_rmsprop']['test_accuracy']:.4f}, final training loss "
        f"{run['rmsprop']['final_train_loss']:.4f} -> "
        f"{run['gc_rmsprop']['final_train_loss']:.4f} (RMSprop -> GCRMSprop)"
    )


def main(argv=None):
    args = parse_args(__doc__, argv)
    produced = provenance()
    data = load_data()
    print(
        f"digits (scikit-learn): {len(data[0])} train / {len(data[1])} test images, "
        f"{args.epochs} epochs, batch {BATCH_SIZE}, learning rate {LEARNING_RATE}"
    )
    runs = paired_runs(ARMS, build_model, args, data, print_run)
    summary = {}
    for name, higher_is_better in METRICS.items():
        summary[name], interval = compare(
            [run["gc_rmsprop"][name] - run["rmsprop"][name] for run in runs],
            higher_is_better,
        )
        print(
            f"{name}: GCRMSprop - RMSprop = {summary[name]['mean']:+.4f}, 95% CI "
            f"{interval} over {len(runs)} paired seeds; "
            f"verdict: {summary[name]['verdict']}"
        )
    write_json(args, runs, summary, produced)
    return 0


if __name__ == "__main__":
    sys.exit(main())

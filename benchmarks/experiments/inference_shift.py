"""Which part of training mode moves the example's outputs: augmentation, dropout, or both?

    TFDS_DATA_DIR=DIR python benchmarks/experiments/inference_shift.py
        [--seeds 1337 1343 1345] [--epochs 10] [--mock-data N] [--json PATH]

For each seed, trains the example's model with plain RMSprop at the example's
defaults through its own `train_arm` (so seeded exactly as a default run), then
scores the trained model on the training pictures and on the test split in four
modes: augmentation (`RandomFlip`, `RandomRotation`, `RandomZoom`) on or off,
times dropout on or off. "Both off" is what `model.evaluate` does; "both on" is
what `fit` trains on. Printed per seed, split and mode: the mean predicted
probability of "human" for the horses and for the humans, the share of pictures
predicted "human" (above 0.5), the accuracy at 0.5 and the ROC AUC
(`keras.metrics.AUC`, as the example). The modes with a random part use one
seeded draw per picture. `--json PATH` writes it all, with when (UTC), from which
commit and with which versions it was made.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import gradient_centralization as gc  # noqa: E402
from digits_gc_vs_rmsprop import provenance, relative  # noqa: E402

# (augmentation, dropout) on or off, from what `evaluate` sees to what `fit` sees.
MODES = {
    "inference": (False, False),
    "augmentation only": (True, False),
    "dropout only": (False, True),
    "training mode": (True, True),
}


def parse_retraining_args(argv, description, seeds):
    """The flags of a script that retrains the example's RMSprop models: `--seeds`
    (default `seeds`), `--epochs`, `--mock-data N` and `--json PATH`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--mock-data", type=int, metavar="N")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.epochs < 1 or min(args.seeds) < 0 or (args.mock_data or 1) < 1:
        parser.error("--epochs and --mock-data must be at least 1, seeds at least 0")
    return args


def train_model(seed, data, args):
    """The model `gc.train_arm` trains with RMSprop from `seed`, and its record."""
    built = []

    def build_and_keep():
        built.append(build_training_model())
        return built[-1]

    build_training_model = gc.build_training_model
    gc.build_training_model = build_and_keep
    try:
        record = gc.train_arm(keras.optimizers.RMSprop, seed, data, args)
    finally:
        gc.build_training_model = build_training_model
    return built[-1], record


def predict(model, images, augmentation, dropout):
    """The model's outputs with its augmentation layers and its dropout each in
    training mode or not. The model is the example's: `Rescaling`, the three
    augmentation layers, then the network."""
    rescaling, *augmenting, network = model.layers
    x = rescaling(images)
    for layer in augmenting:
        x = layer(x, training=augmentation)
    return keras.ops.convert_to_numpy(network(x, training=dropout))[:, 0]


def scores(model, split, batch_size, seed):
    """Per mode, the figures of `model`'s outputs on the (images, labels) batches."""
    results = {}
    for mode, (augmentation, dropout) in MODES.items():
        keras.utils.set_random_seed(seed)  # The same draws for every model of a seed.
        outputs, labels = [], []
        for images, batch_labels in split.batch(batch_size):
            outputs.append(predict(model, images, augmentation, dropout))
            labels.append(np.asarray(batch_labels))
        outputs, labels = np.concatenate(outputs), np.concatenate(labels)
        auc = keras.metrics.AUC()
        auc.update_state(labels, outputs)
        results[mode] = {
            "mean_output_horses": float(outputs[labels == 0].mean()),
            "mean_output_humans": float(outputs[labels == 1].mean()),
            "share_predicted_human": float((outputs > 0.5).mean()),
            "accuracy": float(((outputs > 0.5) == (labels == 1)).mean()),
            "auc": float(auc.result()),
        }
    return results


def format_scores(seed, split_name, results):
    lines = [f"seed {seed}, {split_name}:"]
    lines.append(
        f"  {'mode':<18}{'horses':>8}{'humans':>8}{'human':>8}{'acc':>8}{'AUC':>8}"
    )
    for mode, figures in results.items():
        cells = "".join(
            f"{figures[key]:>8.3f}"
            for key in (
                "mean_output_horses",
                "mean_output_humans",
                "share_predicted_human",
                "accuracy",
                "auc",
            )
        )
        lines.append(f"  {mode:<18}{cells}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_retraining_args(argv, __doc__.splitlines()[0], [1337, 1343, 1345])
    example_args = gc.parse_args(["--epochs", str(args.epochs)])
    train_ds, test_ds = data = gc.load_data(args.mock_data)
    runs = []
    for seed in args.seeds:
        model, record = train_model(seed, data, example_args)
        run = {"seed": seed, "test_record": record["test"]}
        splits = {"training pictures": train_ds, "test split": test_ds}
        for split_name, split in splits.items():
            run[split_name] = scores(model, split, example_args.batch_size, seed)
            print(format_scores(seed, split_name, run[split_name]), flush=True)
        runs.append(run)
        if args.json:
            config = {**vars(args), "json": relative(args.json)}
            report = {"produced": provenance(), "args": config, "runs": runs}
            with open(args.json, "w") as file:
                json.dump(report, file, indent=1)


if __name__ == "__main__":
    main()

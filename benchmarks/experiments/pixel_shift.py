"""Do the test pictures score higher because their pixel values differ from the
training pictures'?

    TFDS_DATA_DIR=DIR python benchmarks/experiments/pixel_shift.py
        [--seeds 1343 1345] [--epochs 10] [--mock-data N] [--json PATH]

First the pixel values (bytes, 0 to 255) of each split and class: the number of
pictures, the mean and standard deviation over all pixels and channels and per
channel, and the share of pure white pixels (255 in every channel). Then, per seed,
the model of plain RMSprop at the example's defaults, trained through the example's
own `train_arm` as inference_shift.py does (so the model of that seed's committed
pair), scored in inference mode on four sets: the test pictures as they are and
matched to the training pictures' pixel statistics; the training pictures as they
are and matched to the test pictures'. Matching is one affine map per channel for
a whole split, `(x - source mean) * target std / source std + target mean`, rounded
and clipped to 0-255: it uses no labels and keeps the differences between the
pictures of a split. The matched sets' statistics are measured too: where values
crowd at one end of the range, clipping leaves them short of the target. Per set:
the mean output ("human" probability), overall and per class, the share above 0.5,
the accuracy at 0.5 and the ROC AUC (`keras.metrics.AUC`, as the example).
`--json PATH` writes it all, with when (UTC), from which commit, with which
versions and by which command it was made.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import gradient_centralization as gc  # noqa: E402
from digits_gc_vs_rmsprop import provenance, relative  # noqa: E402
from inference_shift import parse_retraining_args, train_model  # noqa: E402

CLASSES = {"horses": 0, "humans": 1}
COMMITTED = "benchmarks/results/real_pairs_auc_tensorflow/lr_1e-4/seed_{}.json"


def as_arrays(split):
    """A split's pictures (uint8, N x 300 x 300 x 3) and labels, in memory."""
    pairs = list(split.as_numpy_iterator())
    return np.stack([image for image, _ in pairs]), np.array([y for _, y in pairs])


def pixel_stats(images, chunk=64):
    """Mean and standard deviation of the byte values, overall and per channel,
    and the share of pixels white in every channel."""
    total, squares, white = np.zeros(3), np.zeros(3), 0
    for start in range(0, len(images), chunk):
        values = images[start : start + chunk].astype(np.float64)
        total += values.sum(axis=(0, 1, 2))
        squares += np.square(values).sum(axis=(0, 1, 2))
        white += int((values.min(axis=-1) == 255).sum())
    count = max(images[..., 0].size, 1)
    mean, mean_square = total / count, squares / count
    return {
        "n": len(images),
        "mean": float(mean.mean()),
        "std": float(np.sqrt(mean_square.mean() - mean.mean() ** 2)),
        "mean_per_channel": mean.tolist(),
        "std_per_channel": np.sqrt(mean_square - mean**2).tolist(),
        "share_white": white / count,
    }


def match(images, source, target, chunk=64):
    """`images`, of a split with the statistics `source`, mapped by one affine map
    per channel (the same for every picture) onto `target`'s mean and spread;
    rounded and clipped to bytes. Returns them and the map."""
    scale = np.divide(target["std_per_channel"], source["std_per_channel"])
    shift = np.subtract(target["mean_per_channel"], scale * source["mean_per_channel"])
    matched = np.empty_like(images)
    for start in range(0, len(images), chunk):
        values = images[start : start + chunk] * scale + shift
        matched[start : start + chunk] = np.clip(np.rint(values), 0, 255)
    return matched, {"scale": scale.tolist(), "shift": shift.tolist()}


def scores(model, images, labels, batch_size):
    """The inference-mode figures of `model`'s outputs on `images`."""
    outputs = model.predict(images, batch_size=batch_size, verbose=0)[:, 0]
    auc = keras.metrics.AUC()
    auc.update_state(labels, outputs)
    by_class = {
        f"mean_output_{name}": float(outputs[labels == label].mean())
        for name, label in CLASSES.items()
        if (labels == label).any()
    }
    return {
        "mean_output": float(outputs.mean()),
        **by_class,
        "share_above_0.5": float((outputs > 0.5).mean()),
        "accuracy": float(((outputs > 0.5) == (labels == 1)).mean()),
        "auc": float(auc.result()),
    }


def committed_test(seed, args):
    """The test figures of the committed RMSprop run of `seed` at the defaults."""
    path = COMMITTED.format(seed)
    if args.mock_data or args.epochs != 10 or not os.path.exists(ROOT + "/" + path):
        return None
    with open(ROOT + "/" + path) as file:
        (run,) = json.load(file)["runs"]
    return {"file": path, **run["arms"]["rmsprop"]["test"]}


def format_stats(stats):
    lines = [f"{'pixels':<22}{'n':>6}{'mean':>7}{'std':>6}{'white':>6}  R, G, B"]
    for name, s in stats.items():
        pairs = zip(s["mean_per_channel"], s["std_per_channel"])
        channels = ", ".join(f"{m:.1f}±{d:.1f}" for m, d in pairs)
        figures = (
            f"{s['n']:>6}{s['mean']:>7.1f}{s['std']:>6.1f}{s['share_white']:>6.2f}"
        )
        lines.append(f"{name:<22}{figures}  {channels}")
    return "\n".join(lines)


def format_run(run):
    tests = {"retrained": run["test_record"], "committed": run["committed_test"]}
    pairs = [f"{k} {t['accuracy']:.4f} / {t['auc']:.4f}" for k, t in tests.items() if t]
    lines = [f"seed {run['seed']}, test accuracy / AUC: " + ", ".join(pairs)]
    lines.append(f"  {'set':<22}{'mean':>7}{'>0.5':>7}{'acc':>7}{'AUC':>7}")
    for name, figures in run["scores"].items():
        keys = ["mean_output", "share_above_0.5", "accuracy", "auc"]
        lines.append(f"  {name:<22}" + "".join(f"{figures[k]:>7.3f}" for k in keys))
    return "\n".join(lines)


def main(argv=None):
    args = parse_retraining_args(argv, __doc__.splitlines()[0], [1343, 1345])
    example_args = gc.parse_args(["--epochs", str(args.epochs)])
    data = gc.load_data(args.mock_data)
    arrays = dict(zip(["train", "test"], map(as_arrays, data)))
    stats = {}
    for split, (images, labels) in arrays.items():
        stats[split] = pixel_stats(images)
        for name, label in CLASSES.items():
            stats[f"{split} {name}"] = pixel_stats(images[labels == label])
    sets, maps = {}, {}
    for split, other in [("test", "train"), ("train", "test")]:
        images = arrays[split][0]
        matched, maps[f"{split} matched to {other}"] = match(
            images, stats[split], stats[other]
        )
        stats[f"{split} matched to {other}"] = pixel_stats(matched)
        sets[f"{split} as is"], sets[f"{split} matched to {other}"] = images, matched
    print(format_stats(stats), flush=True)
    report = {"statistics": stats, "maps": maps, "runs": []}
    for seed in args.seeds:
        model, record = train_model(seed, data, example_args)
        run = {"seed": seed, "test_record": record["test"]}
        run["committed_test"] = committed_test(seed, args)
        run["scores"] = {
            name: scores(
                model, images, arrays[name.split()[0]][1], example_args.batch_size
            )
            for name, images in sets.items()
        }
        report["runs"].append(run)
        print(format_run(run), flush=True)
        if args.json:
            command = [relative(__file__), *(sys.argv[1:] if argv is None else argv)]
            produced = {**provenance(), "tensorflow": tf.__version__}
            data_dir = "" if args.mock_data else "TFDS_DATA_DIR=DIR "
            produced["command"] = data_dir + "python " + " ".join(command)
            config = {**vars(args), "json": relative(args.json)}
            with open(args.json, "w") as file:
                json.dump(
                    {"produced": produced, "args": config, **report}, file, indent=1
                )


if __name__ == "__main__":
    main()

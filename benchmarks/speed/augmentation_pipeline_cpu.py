"""Are the example's input pipeline and training faster and leaner than the original's?

Side by side on a CPU: the original example's pipeline and training against this
project's, on `tfds.testing.mock_data` with the real sizes, and GC's cost per step.

    python benchmarks/speed/augmentation_pipeline_cpu.py [--examples 1027]
        [--batch-size 128] [--epochs 4] [--gc-steps 15] [--dtype-policy float32]
        [--json PATH]

Three child processes run one after the other, each on the same machine:
- `seed`: the original example's input pipeline (rescale -> shuffle -> batch ->
  Keras augmentation layers in a parallel `tf.data` map) and its two `model.fit`
  runs on one model, as the example writes them (its GCRMSprop is plain RMSprop in
  Keras 3, so both runs use RMSprop);
- `project`: `gradient_centralization.py`'s data loading and `train_arm()` for
  both optimizers;
- `gc_overhead`: GCRMSprop and RMSprop train steps on identical batches, interleaved.

Epoch time is the median over the warm epochs (all but the first) of both runs;
peak memory is each child's peak resident set size.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from time import perf_counter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

TARGETS = {"epoch_time_ratio": 0.7, "gc_overhead": 1.02, "peak_rss_ratio": 0.9}


def warm_median(epoch_times_per_run):
    return statistics.median(t for times in epoch_times_per_run for t in times[1:])


def seed_child(args):
    """The original example's pipeline and training, rewritten for this benchmark."""
    import tensorflow_datasets as tfds
    from keras import layers
    from keras.optimizers import RMSprop
    from tensorflow import data as tf_data

    from gradient_centralization import TimeHistory, build_model

    AUTOTUNE = tf_data.AUTOTUNE
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
        ds = ds.batch(args.batch_size)
        if augment:
            ds = ds.map(lambda x, y: (apply_aug(x), y), num_parallel_calls=AUTOTUNE)
        return ds.prefetch(buffer_size=AUTOTUNE)

    with tfds.testing.mock_data(num_examples=args.examples):
        train_ds = tfds.load("horses_or_humans", split="train", as_supervised=True)
        train_ds = prepare(train_ds, shuffle=True, augment=True)
        model = build_model()  # The original's CNN, with Keras' Dropout.
        epoch_times = []
        for _ in range(2):
            time_callback = TimeHistory()
            model.compile(
                loss="binary_crossentropy",
                optimizer=RMSprop(learning_rate=1e-4),
                metrics=["accuracy"],
            )
            model.fit(
                train_ds, epochs=args.epochs, verbose=2, callbacks=[time_callback]
            )
            epoch_times.append(time_callback.times)
    return {"epoch_times": epoch_times}


def project_child(args):
    import keras

    import gradient_centralization as gc

    data = gc.load_data(mock_examples=args.examples)
    # The example has no dtype flag: a reader sets the policy before building models.
    keras.config.set_dtype_policy(args.dtype_policy)
    options = argparse.Namespace(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-4
    )
    records = [
        gc.train_arm(optimizer, 1337, data, options)
        for _, optimizer in gc.arms.values()
    ]
    return {"epoch_times": [record["epoch_times"] for record in records]}


def gc_overhead_child(args):
    import gradient_centralization as gc

    train_ds, _ = gc.load_data(mock_examples=args.examples)
    x, y = next(iter(train_ds.batch(args.batch_size)))
    return {"step_times": interleaved_train_steps(gc, x, y, args.gc_steps)}


def interleaved_train_steps(example, x, y, steps):
    """Times `steps` train steps of RMSprop and of GCRMSprop on the batch `(x, y)`,
    alternating which goes first; `example` is the imported gradient_centralization
    module (augmentation_pipeline_gpu.py imports it without TensorFlow)."""
    import keras

    models = {}
    for name, optimizer_class in (
        ("rmsprop", keras.optimizers.RMSprop),
        ("gc_rmsprop", example.GCRMSprop),
    ):
        keras.utils.set_random_seed(0)
        model = example.build_training_model()
        model.compile(
            loss="binary_crossentropy",
            optimizer=optimizer_class(1e-4),
            metrics=["accuracy"],
        )
        model.train_on_batch(x, y)  # Trace and warm up.
        models[name] = model
    step_times = {name: [] for name in models}
    for step in range(steps):
        order = list(models) if step % 2 == 0 else list(reversed(models))
        for name in order:
            start = perf_counter()
            models[name].train_on_batch(x, y)
            step_times[name].append(perf_counter() - start)
    return step_times


CHILDREN = {
    "seed": seed_child,
    "project": project_child,
    "gc_overhead": gc_overhead_child,
}


def run_child(name, args):
    """Runs one measurement in a fresh process; returns its result and peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "result.json")
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            name,
            "--child-output",
            output,
            "--examples",
            str(args.examples),
            "--batch-size",
            str(args.batch_size),
            "--epochs",
            str(args.epochs),
            "--gc-steps",
            str(args.gc_steps),
            "--dtype-policy",
            args.dtype_policy,
        ]
        print(f"--- {name} ---", flush=True)
        subprocess.run(command, check=True)
        with open(output) as file:
            return json.load(file)


def measure(args):
    seed, project, overhead = (run_child(name, args) for name in CHILDREN)
    seed_epoch, project_epoch = warm_median(seed["epoch_times"]), warm_median(
        project["epoch_times"]
    )
    gc_step = statistics.median(overhead["step_times"]["gc_rmsprop"])
    plain_step = statistics.median(overhead["step_times"]["rmsprop"])
    return {
        "config": {
            key: getattr(args, key)
            for key in ("examples", "batch_size", "epochs", "gc_steps", "dtype_policy")
        },
        "seed": {
            "epoch_time": seed_epoch,
            "peak_rss_gib": seed["peak_rss_gib"],
            "epoch_times": seed["epoch_times"],
        },
        "project": {
            "epoch_time": project_epoch,
            "peak_rss_gib": project["peak_rss_gib"],
            "epoch_times": project["epoch_times"],
        },
        "gc_step": {
            "gc_rmsprop": gc_step,
            "rmsprop": plain_step,
            "step_times": overhead["step_times"],
        },
        "ratios": {
            "epoch_time_ratio": project_epoch / seed_epoch,
            "gc_overhead": gc_step / plain_step,
            "peak_rss_ratio": project["peak_rss_gib"] / seed["peak_rss_gib"],
        },
        "targets": TARGETS,
    }


def format_results(results):
    seed, project, ratios = results["seed"], results["project"], results["ratios"]
    lines = [
        f"{'':<30}{'seed':>10}{'project':>10}{'ratio':>9}{'target':>9}",
        f"{'epoch time, warm median (s)':<30}{seed['epoch_time']:>10.2f}{project['epoch_time']:>10.2f}"
        f"{ratios['epoch_time_ratio']:>9.3f}{'<= ' + str(TARGETS['epoch_time_ratio']):>9}",
        f"{'peak RSS (GiB)':<30}{seed['peak_rss_gib']:>10.2f}{project['peak_rss_gib']:>10.2f}"
        f"{ratios['peak_rss_ratio']:>9.3f}{'<= ' + str(TARGETS['peak_rss_ratio']):>9}",
        f"{'train step (s), median':<30}{'RMSprop':>10}{'GC':>10}",
        f"{'':<30}{results['gc_step']['rmsprop']:>10.3f}{results['gc_step']['gc_rmsprop']:>10.3f}"
        f"{ratios['gc_overhead']:>9.3f}{'<= ' + str(TARGETS['gc_overhead']):>9}",
    ]
    for name, target in TARGETS.items():
        met = "met" if ratios[name] <= target else "MISSED"
        lines.append(f"{name}: {ratios[name]:.3f} (target <= {target}): {met}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples",
        type=int,
        default=1027,
        help="mock training images (default: 1027)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=128, help="batch size (default: 128)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=4,
        help="epochs per run, the first is not counted (default: 4)",
    )
    parser.add_argument(
        "--gc-steps",
        type=int,
        default=15,
        help="interleaved train steps per optimizer (default: 15)",
    )
    parser.add_argument(
        "--dtype-policy",
        default="float32",
        help="Keras dtype policy of this project's models, set with "
        "keras.config.set_dtype_policy(...) as a notebook cell would; the targets "
        "hold for float32 (default)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.examples, args.batch_size, args.gc_steps) < 1 or args.epochs < 2:
        parser.error(
            "--examples, --batch-size and --gc-steps must be >= 1, --epochs >= 2"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        result = CHILDREN[args.child](args)
        result["peak_rss_gib"] = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        )
        with open(args.child_output, "w") as file:
            json.dump(result, file)
        return 0
    results = measure(args)
    print("\n" + format_results(results))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

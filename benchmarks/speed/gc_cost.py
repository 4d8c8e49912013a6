"""What does GCRMSprop cost against RMSprop on each backend, per apply() and per
training step?

    python benchmarks/speed/gc_cost.py [--backends tensorflow jax torch]
        [--apply-steps 200] [--train-steps 20] [--rounds 10] [--batch-size 128]
        [--json PATH]

For each backend, in a process of its own (KERAS_BACKEND is fixed per process),
RMSprop and the example's `GCRMSprop` are timed side by side, taking turns in an
order shuffled afresh each round (seeded):

- `apply()` on `keras.applications.EfficientNetB0(weights=None)` (213 trainable
  variables, 82 of them centralized), with fixed random gradients, called the way
  each backend's `fit` calls it: eagerly on PyTorch, inside a `tf.function` on
  TensorFlow, as a `jax.jit` of `stateless_apply` on JAX;
- a whole training step of the example's CNN (`build_training_model()`: the
  augmentation layers and the five-block network) on a batch of `--batch-size`
  random 300x300 pictures, through `model.train_on_batch`, compiled as `fit`
  compiles it, the two models starting from the same weights.

Each figure is the median over the rounds of the ms per step; the ratio is GC's
over RMSprop's. Each round runs `--apply-steps / --rounds` apply() steps, or
`--train-steps / --rounds` training steps, of each optimizer, after one untimed
warm-up step each (which also builds and compiles). `--json` writes the figures,
with every round's times, when (UTC) and from which commit it was run, and each
backend's versions and thread settings. Run it on an otherwise idle machine.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKENDS = ("tensorflow", "jax", "torch")


def efficientnet_with_gradients():
    """The trainable variables of EfficientNetB0 (weights=None), and fixed random
    gradients for them, all from seed 0."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    variables = keras.applications.EfficientNetB0(weights=None).trainable_variables
    rng = np.random.default_rng(0)
    grads = [
        keras.ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32") * 1e-3)
        for v in variables
    ]
    return variables, grads


def compiled_apply(optimizer, grads, variables):
    """One apply() step, run as the backend's `fit` runs it."""
    import keras

    optimizer.build(variables)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda: optimizer.apply(grads, variables))
    if backend == "jax":
        import jax

        jitted = jax.jit(optimizer.stateless_apply)
        state = {
            "optimizer": [v.value for v in optimizer.variables],
            "trainable": [v.value for v in variables],
        }

        def step():
            state["trainable"], state["optimizer"] = jitted(
                state["optimizer"], grads, state["trainable"]
            )
            jax.block_until_ready(state["trainable"])

        return step
    return lambda: optimizer.apply(grads, variables)


def interleaved(steps, total, rounds):
    """Median ms per call of each of `steps`, the calls taking turns by rounds."""
    for step in steps.values():
        step()  # Warm-up: builds, traces and compiles; not timed.
    per_round = max(1, total // rounds)
    times = {name: [] for name in steps}
    names, order = list(steps), random.Random(0)
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            start = time.perf_counter()
            for _ in range(per_round):
                steps[name]()
            times[name].append((time.perf_counter() - start) / per_round * 1000)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"ms_per_step": medians, "steps_per_round": per_round, "per_round_ms": times}


def with_ratio(found):
    """`interleaved`'s figures and GC's median over RMSprop's."""
    ms = found["ms_per_step"]
    return {**found, "ratio": ms["gc_rmsprop"] / ms["rmsprop"]}


def measure_backend(args):
    """The figures of this process's backend (a worker's job)."""
    import keras
    import numpy as np

    sys.path.insert(0, ROOT)
    from gradient_centralization import GCRMSprop, build_training_model

    optimizers = {"rmsprop": keras.optimizers.RMSprop, "gc_rmsprop": GCRMSprop}
    variables, grads = efficientnet_with_gradients()
    apply_steps = {
        key: compiled_apply(cls(1e-4), grads, variables)
        for key, cls in optimizers.items()
    }
    apply = with_ratio(interleaved(apply_steps, args.apply_steps, args.rounds))

    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, size=(args.batch_size, 300, 300, 3), dtype="uint8")
    labels = rng.integers(0, 2, size=(args.batch_size, 1)).astype("float32")
    train_steps = {}
    for key, cls in optimizers.items():
        keras.utils.set_random_seed(0)  # The same starting weights for both.
        model = build_training_model()
        model.compile(cls(1e-4), "binary_crossentropy", metrics=["accuracy", "auc"])
        train_steps[key] = lambda model=model: model.train_on_batch(pictures, labels)
    step = with_ratio(interleaved(train_steps, args.train_steps, args.rounds))
    return {
        "apply_efficientnetb0": {"variables": len(variables), **apply},
        "train_step": {"batch_size": args.batch_size, **step},
        "versions": versions(),
    }


def versions():
    import keras

    backend = keras.backend.backend()
    module = __import__(backend)
    found = {
        "python": platform.python_version(),
        "keras": keras.version(),
        backend: module.__version__,
        "cpu_count": os.cpu_count(),
    }
    if backend == "torch":
        found["torch_threads"] = module.get_num_threads()
    return found


def run_worker(backend, argv):
    """Runs this script for one backend in a process of its own; its figures."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, os.path.abspath(__file__), "--worker", *argv]
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{backend}: the worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=BACKENDS)
    parser.add_argument("--apply-steps", type=int, default=200, help="per optimizer")
    parser.add_argument("--train-steps", type=int, default=20, help="per optimizer")
    parser.add_argument("--rounds", type=int, default=10, help="turns taken")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--json", metavar="PATH", help="write the figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    counts = (args.apply_steps, args.train_steps, args.rounds, args.batch_size)
    if min(counts) < 1:
        parser.error("--apply-steps, --train-steps, --rounds, --batch-size: at least 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure_backend(args)))
        return 0
    worker_argv = [
        *("--apply-steps", str(args.apply_steps), "--train-steps"),
        *(str(args.train_steps), "--rounds", str(args.rounds)),
        *("--batch-size", str(args.batch_size)),
    ]
    figures = {backend: run_worker(backend, worker_argv) for backend in args.backends}
    print(
        f"{'backend':<11} {'what':<28} {'RMSprop ms':>11} {'GC ms':>10} {'GC/RMSprop':>11}"
    )
    for backend, found in figures.items():
        for key, label in (
            ("apply_efficientnetb0", "apply(), EfficientNetB0"),
            ("train_step", f"training step, batch {args.batch_size}"),
        ):
            ms = found[key]["ms_per_step"]
            print(
                f"{backend:<11} {label:<28} {ms['rmsprop']:11.2f} "
                f"{ms['gc_rmsprop']:10.2f} {found[key]['ratio']:11.3f}"
            )
    if args.json:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks", "experiments"))
        from digits_gc_vs_rmsprop import provenance, relative

        # Each backend's versions are the worker's; this process's backend is none.
        produced = {k: v for k, v in provenance().items() if k != "backend"}
        flags = [relative(f) if f == args.json else f for f in argv]
        produced["command"] = " ".join(["benchmarks/speed/gc_cost.py", *flags])
        report = {"question": " ".join(__doc__.splitlines()[:2]), "produced": produced}
        with open(args.json, "w") as file:
            json.dump({**report, "backends": figures}, file, indent=2)
            file.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much does GCRMSprop add to an apply() step on PyTorch, before and after?

    python benchmarks/speed/apply_cost.py [--example REV:PATH] [--after PATH]
        [--steps 300] [--rounds 10] [--threads N] [--json PATH]

On the PyTorch backend (this script sets KERAS_BACKEND=torch), for
`keras.applications.EfficientNetB0(weights=None)` (213 trainable variables), times
`optimizer.apply(grads, model.trainable_variables)`, the call PyTorch's `fit` makes
every step, eagerly, for three optimizers side by side in one process: plain
`keras.optimizers.RMSprop`, the `GCRMSprop` of `--example` ("before", by default
the block of commit 567e53d, whose `apply()` ran the name rules' regular expressions
again on every step) and the `GCRMSprop` of `--after` ("after", by default the
working tree's `gradient_centralization.py`, which decides each variable's axes in
`build()` and looks them up in `apply()`). `REV:PATH` takes a committed file with
`git show`. Only the copyable block is loaded from each file (from
`ATTENTION_KERNELS = ` to the end of `class GCRMSprop`), as a temporary module.

GC minus RMSprop is not GC's arithmetic alone: Keras' torch backend swaps the
built-in `RMSprop` for a fused update (torch `_foreach` operations), which a
subclass such as `GCRMSprop` does not get, so the difference also holds the unfused
update; before minus after is what running the name rules again in every apply()
cost. The gradients are fixed random tensors. The optimizers take turns, in an order
shuffled afresh each round (seeded): `--rounds` rounds, each of `--steps / --rounds`
steps per optimizer, after building it and one warm-up step; the figure of each is
its median round, in ms per step. Printed: each optimizer's ms per step, GC minus
RMSprop per step, the ratios GC / RMSprop and after / before, and the median over
the rounds of before minus after, paired by round; and GC's own work per step, the
mixin of each block over an apply() that does nothing (no update: what is left is
deciding or looking up the axes, and centralizing). `--json` writes the same with
when (UTC) and from which commit it was run, and the versions.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402
from gc_cost import efficientnet_with_gradients, interleaved  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEFORE = "567e53d:gradient_centralization.py"
AFTER = "gradient_centralization.py"


def read_source(spec):
    """The text of `spec`: `REV:PATH` from git, else a file (relative to the
    repository root when not found from the current folder)."""
    if ":" in spec and not os.path.exists(spec):
        return subprocess.run(
            ["git", "show", spec], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    path = spec if os.path.exists(spec) else os.path.join(ROOT, spec)
    with open(path) as file:
        return file.read()


def copyable_block(source):
    """The block to copy, as README shows it: its imports, then the definitions."""
    start = source.index("ATTENTION_KERNELS = ")
    end = source.index('"""', source.index("class GCRMSprop("))
    end = source.index('"""', end + 3) + 3
    return "import re\n\nimport keras\n\n\n" + source[start:end] + "\n"


def load_block(spec, name):
    """The block in `spec`, imported from a temporary module."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{name}.py")
        with open(path, "w") as file:
            file.write(copyable_block(read_source(spec)))
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    return module


class NoUpdate(keras.optimizers.RMSprop):
    """An RMSprop whose apply() does nothing: below the mixin, it leaves GC's own
    work per step (deciding or looking up the axes, centralizing) to be timed."""

    def apply(self, grads, trainable_variables=None):
        return None


def measure(optimizers, steps, rounds):
    """Median ms per step of each optimizer, the optimizers taking turns."""
    variables, grads = efficientnet_with_gradients()
    for optimizer in optimizers.values():
        optimizer.build(variables)  # As fit() builds it, before the first step.
    calls = {
        name: lambda optimizer=optimizer: optimizer.apply(grads, variables)
        for name, optimizer in optimizers.items()
    }
    # One warm-up step each, then the rounds.
    found = interleaved(calls, steps, rounds)
    return found["ms_per_step"], {
        "variables": len(variables),
        "steps_per_round": found["steps_per_round"],
        "rounds": rounds,
        "per_round_ms": found["per_round_ms"],
    }


def commit():
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or None


def versions():
    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "keras": keras.version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "backend": keras.backend.backend(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--example",
        default=BEFORE,
        help=f"the 'before' example, PATH or REV:PATH (default: {BEFORE})",
    )
    parser.add_argument(
        "--after",
        default=AFTER,
        help=f"the 'after' example, PATH or REV:PATH (default: {AFTER})",
    )
    parser.add_argument("--steps", type=int, default=300, help="per optimizer")
    parser.add_argument("--rounds", type=int, default=10, help="turns taken")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch.set_num_threads (default: torch's own); 1 keeps the figures "
        "steady on a machine busy with other work",
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures here")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or (args.threads or 1) < 1:
        parser.error("--steps, --rounds and --threads must be at least 1")

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    blocks = {
        "before": load_block(args.example, "gc_block_before"),
        "after": load_block(args.after, "gc_block_after"),
    }
    optimizers = {"rmsprop": keras.optimizers.RMSprop(1e-4)}
    for key, block in blocks.items():
        optimizers[f"gc_{key}"] = block.GCRMSprop(1e-4)
        own = type("GCNoUpdate", (block.GradientCentralization, NoUpdate), {})
        optimizers[f"gc_{key}_own"] = own(1e-4)
    ms, settings = measure(optimizers, args.steps, args.rounds)
    plain = ms["rmsprop"]
    rounds = settings["per_round_ms"]
    paired = [b - a for b, a in zip(rounds["gc_before"], rounds["gc_after"])]
    figures = {
        "ms_per_step": {key: ms[key] for key in ("rmsprop", "gc_before", "gc_after")},
        "gc_minus_rmsprop_ms": {
            "before": ms["gc_before"] - plain,
            "after": ms["gc_after"] - plain,
        },
        "ratio_to_rmsprop": {
            "before": ms["gc_before"] / plain,
            "after": ms["gc_after"] / plain,
        },
        "after_over_before": ms["gc_after"] / ms["gc_before"],
        # The mixin over an apply() that does nothing: GC's own work per step.
        "gc_own_ms": {"before": ms["gc_before_own"], "after": ms["gc_after_own"]},
        # Round by round, the two ran back to back: the paired difference.
        "before_minus_after_ms": {
            "median_of_rounds": statistics.median(paired),
            "rounds_after_faster": sum(d > 0 for d in paired),
            "rounds": len(paired),
        },
    }
    print(
        f"EfficientNetB0, {settings['variables']} variables, PyTorch backend, "
        f"{settings['rounds']} rounds of {settings['steps_per_round']} steps each"
    )
    rows = [("RMSprop", plain, None, None)]
    for key, label in (("before", args.example), ("after", args.after)):
        rows.append(
            (
                f"GCRMSprop {key} ({label})",
                ms["gc_" + key],
                figures["gc_minus_rmsprop_ms"][key],
                figures["ratio_to_rmsprop"][key],
            )
        )
    width = max(len(row[0]) for row in rows)
    print(
        f"{'optimizer':<{width}} {'ms/step':>9} {'GC - RMSprop':>13} {'/ RMSprop':>10}"
    )
    for label, step, overhead, ratio in rows:
        extra = "" if overhead is None else f" {overhead:13.3f} {ratio:10.3f}"
        print(f"{label:<{width}} {step:9.3f}{extra}")
    own = figures["gc_own_ms"]
    print(
        f"GC's own work per step (the mixin over an apply() that does nothing): "
        f"before {own['before']:.3f} ms, after {own['after']:.3f} ms"
    )
    change = figures["before_minus_after_ms"]
    print(
        f"GC after / GC before: {figures['after_over_before']:.3f}; before minus "
        f"after, median of the rounds: {change['median_of_rounds']:.3f} ms per step "
        f"(after faster in {change['rounds_after_faster']} of {change['rounds']})"
    )
    if args.json:
        report = {
            "question": __doc__.splitlines()[0],
            "produced": {
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "commit": commit(),
                "versions": versions(),
                "command": " ".join(["benchmarks/speed/apply_cost.py", *argv]),
            },
            "model": "keras.applications.EfficientNetB0(weights=None)",
            "before": args.example,
            "after": args.after,
            "settings": settings,
            **figures,
        }
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
            file.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

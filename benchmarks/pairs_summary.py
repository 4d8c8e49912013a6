"""What README quotes from a report of the example (`--json`), printed from it.

    python benchmarks/pairs_summary.py REPORT.json [--plot-first PATH]

Prints, with the example's own functions: the table of pair 1 (the default run:
seed 1337), the interval and verdict over all pairs, the mean training loss per
epoch of each optimizer, the first epoch at which GC's mean training loss reaches
plain RMSprop's final one (the paper's "faster training", on this task), and the
mean time of a warm epoch (all but the first). `--plot-first PATH` saves pair 1's
curves, as a default run draws them.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gradient_centralization as gc  # noqa: E402


def first_epoch_reaching(losses, target):
    """The first epoch (from 1) whose loss is at most `target`; None if none is."""
    return next((epoch for epoch, loss in enumerate(losses, 1) if loss <= target), None)


def summary_lines(report):
    runs = report["runs"]
    lines = [f"Pair 1 (seed {runs[0]['seed']}):", gc.format_pair(runs[0]["arms"]), ""]
    lines.append(gc.format_summary(report["summary"], len(runs)))
    mean_losses = {}
    for key, (title, _) in gc.arms.items():
        losses = np.array([run["arms"][key]["history"]["loss"] for run in runs])
        mean_losses[key] = losses.mean(axis=0)
        rounded = " ".join(f"{loss:.4f}" for loss in mean_losses[key])
        lines.append(f"{title}, mean training loss per epoch: {rounded}")
    target = mean_losses["rmsprop"][-1]
    epoch = first_epoch_reaching(mean_losses["gc_rmsprop"], target)
    reached = f"at epoch {epoch}" if epoch else "in no epoch"
    lines.append(
        f"GC's mean training loss reaches RMSprop's final {target:.4f} {reached}"
    )
    for key, (title, _) in gc.arms.items():
        warm = [t for run in runs for t in run["arms"][key]["epoch_times"][1:]]
        lines.append(f"{title}, warm epoch: {np.mean(warm):.1f} s on average")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="a JSON report of gradient_centralization.py")
    parser.add_argument("--plot-first", metavar="PATH", help="save pair 1's curves")
    args = parser.parse_args(argv)
    try:
        with open(args.report) as file:
            report = json.load(file)
    except (OSError, ValueError) as error:
        parser.error(f"cannot read {args.report}: {error}")
    print("\n".join(summary_lines(report)))
    if args.plot_first:
        gc.plot_curves([report["runs"][0]["arms"]]).savefig(args.plot_first, dpi=100)


if __name__ == "__main__":
    main()

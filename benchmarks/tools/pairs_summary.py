"""What does a set of the example's reports say? Combines them and prints what README quotes.

    python benchmarks/tools/pairs_summary.py REPORT.json [REPORT.json ...]
        [--json COMBINED.json] [--plot PATH] [--plot-first PATH]

Each REPORT is a `--json` report of gradient_centralization.py, of one pair or more
(long comparisons run one pair per process, `--seed S --runs 1 --json ...`, so that a
stopped machine loses at most one pair). The pairs of all reports are combined, in
the order of their seeds; reports made with other settings (epochs, batch size,
learning rate, data, backend) or repeating a seed are refused.

Printed, with the example's own functions: the table of the first pair (the lowest
seed), the interval and verdict of every test metric over all pairs (recomputed from
the pairs), the mean training loss per epoch of each optimizer, the first epoch at
which GC's mean training loss reaches plain RMSprop's final one (the paper's "faster
training", on this task), the mean time of a warm epoch (all but the first), and how
far the ratio of the two training times (RMSprop / GC) spreads over single pairs.
`--json` writes the combined report (with each source's file and `produced`),
`--plot` the curves of all pairs, `--plot-first` the first pair's, as a default run
draws them.
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import gradient_centralization as gc  # noqa: E402

# Settings that differ from one pair's report to the next; the others must agree.
PER_REPORT = ("seed", "runs", "json", "plot")


def first_epoch_reaching(losses, target):
    """The first epoch (from 1) whose loss is at most `target`; None if none is."""
    return next((epoch for epoch, loss in enumerate(losses, 1) if loss <= target), None)


def combine(reports, paths):
    """One report of all the pairs of `reports`, sorted by seed; raises ValueError
    for reports of different settings or a seed found twice."""
    settings = [
        {k: v for k, v in report["config"].items() if k not in PER_REPORT}
        for report in reports
    ]
    for path, setting in zip(paths, settings):
        if setting != settings[0]:
            raise ValueError(f"{path} has other settings than {paths[0]}: {setting}")
    runs = sorted(
        (run for report in reports for run in report["runs"]),
        key=lambda run: run["seed"],
    )
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"a seed appears twice: {seeds}")
    config = {**reports[0]["config"], "seed": seeds[0], "runs": len(runs)}
    config.update(json=None, plot=None)
    sources = [
        {"file": path, "produced": report.get("produced")}
        for path, report in zip(paths, reports)
    ]
    # Reports made before the example measured test AUC lack it.
    tests = [arm["test"] for run in runs for arm in run["arms"].values()]
    metrics = {
        metric: higher_is_better
        for metric, higher_is_better in gc.HIGHER_IS_BETTER.items()
        if all(metric in test for test in tests)
    }
    return {
        "config": config,
        "sources": sources,
        "runs": runs,
        "summary": gc.summarize(runs, metrics),
    }


def nan_for_null(value):
    """A report read back, with NaN where the example wrote a diverged value as null."""
    if isinstance(value, dict):
        return {key: nan_for_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nan_for_null(item) for item in value]
    return float("nan") if value is None else value


def write_strict_json(data, path):
    """Writes `data` as strict JSON, as the example writes its report: NaN and
    infinities become null."""
    strict = json.loads(json.dumps(data), parse_constant=lambda name: None)
    with open(path, "w") as file:
        json.dump(strict, file, indent=2, allow_nan=False)


def summary_lines(report):
    runs = report["runs"]
    # A report made before the example measured test AUC shows it as nan.
    first = {
        key: {**arm, "test": {"auc": float("nan"), **arm["test"]}}
        for key, arm in runs[0]["arms"].items()
    }
    lines = [f"Pair 1 (seed {runs[0]['seed']}):", gc.format_pair(first), ""]
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
    ratios = [
        run["arms"]["rmsprop"]["training_time"]
        / run["arms"]["gc_rmsprop"]["training_time"]
        for run in runs
    ]
    lines.append(
        f"Training time ratio RMSprop / GC over single pairs: from {min(ratios):.3f}"
        f" to {max(ratios):.3f} (mean {np.mean(ratios):.3f})"
    )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", metavar="REPORT", help="--json reports")
    parser.add_argument("--json", metavar="PATH", help="write the combined report")
    parser.add_argument("--plot", metavar="PATH", help="save all pairs' curves")
    parser.add_argument("--plot-first", metavar="PATH", help="save pair 1's curves")
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        try:
            with open(path) as file:
                report = json.load(file)
            report["runs"] = nan_for_null(report["runs"])
            reports.append(report)
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"cannot read {path}: {error}")
    try:
        report = combine(reports, args.reports)
    except (KeyError, TypeError, ValueError) as error:
        parser.error(f"cannot combine the reports: {error}")
    print("\n".join(summary_lines(report)))
    if args.json:
        write_strict_json(report, args.json)
    if args.plot:
        pairs = [run["arms"] for run in report["runs"]]
        gc.plot_curves(pairs).savefig(args.plot, dpi=100)
    if args.plot_first:
        gc.plot_curves([report["runs"][0]["arms"]]).savefig(args.plot_first, dpi=100)


if __name__ == "__main__":
    main()

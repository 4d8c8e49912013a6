"""Which learning rate suits each optimizer? The sweep's picture and each one's pick.

    python benchmarks/tools/lr_sweep.py SETTING_DIR [SETTING_DIR ...]
        [--json PATH] [--plot PATH]

Each SETTING_DIR holds the example's reports of one learning rate, one pair per
file (`seed_S.json`, as benchmarks/tools/run_pairs.py writes them); its reports are
combined as benchmarks/tools/pairs_summary.py combines them, which refuses mixed
settings. For each optimizer and learning rate, over the seeds: the number of pairs,
how many runs diverged (a test figure that is not finite), and the mean test AUC,
test accuracy and final training loss with their 95% t-intervals (diverged runs
left out of the means, and counted). Each optimizer's pick is the learning rate of
its highest mean test AUC, flagged when it sits at an edge of the sweep. Then, on
the seeds both picks ran (the settings share seeds), each optimizer at its pick
minus plain RMSprop at the defaults' 1e-4, paired by seed, at every learning rate;
and GC at its pick minus RMSprop at its pick. The picks were chosen on these test
pictures, so the intervals at the picks favour them: new seeds confirm them. `--json` writes all of it, `--plot` the picture: the three
figures against the learning rate, on a log axis.
"""

import argparse
import glob
import json
import math
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradient_centralization as gc  # noqa: E402
from pairs_summary import combine, nan_for_null, write_strict_json  # noqa: E402

# The figures of a run, and whether higher is better.
FIGURES = {
    "test_auc": (lambda arm: arm["test"]["auc"], True),
    "test_accuracy": (lambda arm: arm["test"]["accuracy"], True),
    "final_training_loss": (lambda arm: arm["history"]["loss"][-1], False),
}


def read_setting(folder):
    """The combined report of the `seed_*.json` reports in `folder`."""
    paths = sorted(glob.glob(os.path.join(folder, "seed_*.json")))
    if not paths:
        raise ValueError(f"no seed_*.json report in {folder}")
    reports = []
    for path in paths:
        with open(path) as file:
            report = json.load(file)
        report["runs"] = nan_for_null(report["runs"])
        reports.append(report)
    return combine(reports, paths)


def describe(runs, key):
    """Pairs, diverged runs, and each figure's mean and interval for arm `key`."""
    arms = [run["arms"][key] for run in runs]
    finite = [a for a in arms if all(math.isfinite(f(a)) for f, _ in FIGURES.values())]
    row = {"pairs": len(arms), "diverged": len(arms) - len(finite)}
    for name, (figure, _) in FIGURES.items():
        row[name] = gc.paired_difference([figure(arm) for arm in finite])
    return row


def paired(runs_a, key_a, runs_b, key_b, name):
    """`key_a` of `runs_a` minus `key_b` of `runs_b` on `name`, over the seeds of
    both, with its interval and verdict (the example's rules)."""
    figure, higher_is_better = FIGURES[name]
    b_by_seed = {run["seed"]: run["arms"][key_b] for run in runs_b}
    seeds = [run["seed"] for run in runs_a if run["seed"] in b_by_seed]
    a_by_seed = {run["seed"]: run["arms"][key_a] for run in runs_a}
    differences = [figure(a_by_seed[s]) - figure(b_by_seed[s]) for s in seeds]
    difference = gc.paired_difference(differences)
    return {
        **difference,
        "seeds": seeds,
        "verdict": gc.verdict(difference, higher_is_better),
    }


def sweep(folders):
    """The sweep's figures, picks and paired comparisons."""
    settings = {}
    for folder in folders:
        report = read_setting(folder)
        settings[report["config"]["learning_rate"]] = (folder, report["runs"])
    rates = sorted(settings)
    table = {key: {} for key in gc.arms}
    for rate in rates:
        for key in gc.arms:
            table[key][rate] = describe(settings[rate][1], key)
    picks = {}
    for key in gc.arms:
        best = max(rates, key=lambda rate: table[key][rate]["test_auc"]["mean"])
        picks[key] = {"learning_rate": best, "at_edge": best in (rates[0], rates[-1])}
    # Each optimizer at each learning rate against plain RMSprop at the defaults,
    # then each at its pick against plain RMSprop at its pick.
    pairs = [(key, rate, 1e-4) for rate in rates for key in gc.arms]
    pairs.append(("gc_rmsprop", picks["gc_rmsprop"]["learning_rate"], None))
    comparisons = {}
    for key, rate, plain_rate in pairs:
        plain_rate = plain_rate or picks["rmsprop"]["learning_rate"]
        if plain_rate not in settings or (key, rate) == ("rmsprop", plain_rate):
            continue
        name = f"{key} at {rate:g} - rmsprop at {plain_rate:g}"
        comparisons[name] = {
            figure: paired(
                settings[rate][1], key, settings[plain_rate][1], "rmsprop", figure
            )
            for figure in FIGURES
        }
    return {
        "settings": {f"{rate:g}": settings[rate][0] for rate in rates},
        "table": {
            key: {f"{r:g}": row for r, row in rows.items()}
            for key, rows in table.items()
        },
        "picks": picks,
        "comparisons": comparisons,
    }


def summary_lines(result):
    lines = []
    for key, (title, _) in gc.arms.items():
        lines.append(f"{title}:")
        for rate, row in result["table"][key].items():
            cells = []
            for name in FIGURES:
                d = row[name]
                interval = (
                    "" if d["ci95"] is None else " [{:.4f}, {:.4f}]".format(*d["ci95"])
                )
                cells.append(f"{name} {d['mean']:.4f}{interval}")
            diverged = f", {row['diverged']} diverged" if row["diverged"] else ""
            lines.append(
                f"  lr {rate}: {row['pairs']} pairs{diverged}; " + "; ".join(cells)
            )
        pick = result["picks"][key]
        edge = " (at the sweep's edge)" if pick["at_edge"] else ""
        lines.append(f"  pick by mean test AUC: {pick['learning_rate']:g}{edge}")
    for name, figures in result["comparisons"].items():
        lines.append(f"{name}, paired by seed:")
        for figure, d in figures.items():
            interval = (
                ""
                if d["ci95"] is None
                else ", 95% CI [{:+.4g}, {:+.4g}]".format(*d["ci95"])
            )
            lines.append(
                f"  {figure}: {d['mean']:+.4g}{interval}: {d['verdict']} ({len(d['seeds'])} seeds)"
            )
    return lines


TITLES = {"test_auc": "Test AUC", "test_accuracy": "Test accuracy"}
TITLES["final_training_loss"] = "Training loss after the last epoch (log above 1)"


def plot(result):
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for shift, (key, (title, _)) in zip((0.95, 1.05), gc.arms.items()):
        rows = result["table"][key]
        # Side by side, a little apart, so that the intervals do not hide each other.
        rates = [float(rate) * shift for rate in rows]
        for axis, name in zip(axes, FIGURES):
            means = np.array([row[name]["mean"] for row in rows.values()])
            intervals = [
                row[name]["ci95"] or [m, m] for row, m in zip(rows.values(), means)
            ]
            errors = np.abs(np.array(intervals).T - means)
            axis.errorbar(rates, means, yerr=errors, marker="o", capsize=4, label=title)
            axis.set(xscale="log", xlabel="Learning rate", title=TITLES[name])
            axis.legend()
    # Linear up to 1, logarithmic above: a loss that blew up at a high learning rate
    # does not flatten the others. A loss is never below 0, whatever its interval.
    axes[-1].set_yscale("symlog", linthresh=1)
    axes[-1].set_ylim(bottom=0)
    pairs = sorted(
        {row["pairs"] for rows in result["table"].values() for row in rows.values()}
    )
    counts = ", ".join(map(str, pairs))
    figure.suptitle(f"Mean over the seeds ({counts} pairs), with its 95% interval")
    return figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", metavar="SETTING_DIR")
    parser.add_argument("--json", metavar="PATH", help="write the figures here")
    parser.add_argument("--plot", metavar="PATH", help="save the picture here")
    args = parser.parse_args(argv)
    try:
        result = sweep(args.folders)
    except (OSError, KeyError, TypeError, ValueError) as error:
        parser.error(f"cannot read the sweep: {error}")
    print("\n".join(summary_lines(result)))
    if args.json:
        write_strict_json(result, args.json)
    if args.plot:
        plot(result).savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()

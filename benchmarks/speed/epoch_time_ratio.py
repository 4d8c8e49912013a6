"""Does the "Training time" row compare optimizers, or the order of the arms?

    python benchmarks/speed/epoch_time_ratio.py [--example PATH ...] [--repeats 4]
        [--epochs 2] [--examples 1027] [--json PATH]

An "arm" is one of the two training runs of a pair: RMSprop's, then GCRMSprop's,
one after the other in the same process.

Runs the example as a reader does (`python gradient_centralization.py`), in a fresh
process each time, at a learning rate of 1e-30 on `--examples` mock images: both
arms then train alike (the same weights, batches and numbers), so the ratio of their
reported training times (RMSprop / GCRMSprop) should be 1, up to noise and GC's own
cost (about 1% of a step on a CPU). Each repeat is a new process, so each pays the
process's one-time warm-up again. Printed per file: the mean ratio, its standard
deviation and range, and a 95% t-interval over the repeats, for the training time
the example reports and, from the same runs, for the time of all epochs (what
versions before 2026-11-30 reported). Several `--example` files run interleaved, one
after the other in every repeat, in the reverse order in every other repeat, so that
neither always runs first. `--example REV:PATH` times a committed version
(`dbc050a:gradient_centralization.py`, say), taken with `git show`. Files are named,
in the printout and the JSON, relative to the repository root (a file outside it by
its name alone); `--json` also records when (UTC) and from which commit the run was
made, and is rewritten after every repeat, so that an interrupted run keeps what it
finished.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "experiments"))

# The examples run in the reader's environment, not in one digits_gc_vs_rmsprop's
# import changes.
ENVIRONMENT = dict(os.environ)

from digits_gc_vs_rmsprop import provenance, relative  # noqa: E402
from gradient_centralization import paired_difference  # noqa: E402


def resolve(example, folder):
    """The label and the file to run for one `--example`: a file, or a committed
    version, REV:PATH, written into `folder` by `git show`."""
    if os.path.isfile(example):
        label = relative(example)
        if os.path.isabs(label) or label.startswith(os.pardir):
            label = os.path.basename(label)  # outside the repository
        return label, os.path.abspath(example)
    revision, _, path = example.partition(":")
    result = subprocess.run(
        ["git", "show", example], cwd=ROOT, capture_output=True, text=True
    )
    if not path or result.returncode != 0:
        sys.exit(f"--example {example}: neither a file nor REV:PATH in this repository")
    copy = os.path.join(folder, f"{revision}_{os.path.basename(path)}")
    with open(copy, "w") as file:
        file.write(result.stdout)
    return example, copy


def time_ratio(example, args, folder):
    """One fresh process of `example`; the RMSprop / GCRMSprop training-time ratio."""
    report = os.path.join(folder, "report.json")
    command = [sys.executable, example, "--mock-data", str(args.examples)]
    command += ["--epochs", str(args.epochs), "--learning-rate", "1e-30"]
    result = subprocess.run(
        command + ["--json", report],
        capture_output=True,
        text=True,
        cwd=folder,
        env=ENVIRONMENT,
    )
    if result.returncode != 0:
        sys.exit(f"{example} failed:\n{result.stderr[-3000:]}")
    with open(report) as file:
        (run,) = json.load(file)["runs"]
    plain, gc = run["arms"]["rmsprop"], run["arms"]["gc_rmsprop"]
    return {
        "ratio": plain["training_time"] / gc["training_time"],
        # The same runs timed as versions before 2026-11-30 did: every epoch.
        "all_epochs_ratio": sum(plain["epoch_times"]) / sum(gc["epoch_times"]),
        "epoch_times": {"rmsprop": plain["epoch_times"], "gc": gc["epoch_times"]},
    }


MEASURES = {
    "ratio": "reported training time, RMSprop/GCRMSprop",
    "all_epochs_ratio": "time of all epochs, RMSprop/GCRMSprop",
}


def spread(ratios):
    """Mean, standard deviation, range and 95% t-interval of the ratios."""
    interval = paired_difference([ratio - 1 for ratio in ratios])["ci95"]
    return {
        "mean": statistics.mean(ratios),
        "stdev": statistics.stdev(ratios) if len(ratios) > 1 else None,
        "range": [min(ratios), max(ratios)],
        "ci95": interval and [1 + bound for bound in interval],
    }


def describe(figures):
    text = f"mean {figures['mean']:.4f}"
    if figures["ci95"]:
        low, high = figures["range"]
        text += f", sd {figures['stdev']:.4f}, range [{low:.4f}, {high:.4f}]"
        text += ", 95% CI [{:.4f}, {:.4f}]".format(*figures["ci95"])
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--example",
        action="append",
        help="example file, or REV:PATH, to time; repeat for several (default: "
        "this repository's gradient_centralization.py)",
    )
    parser.add_argument("--repeats", type=int, default=4, help="processes per file")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per arm")
    parser.add_argument("--examples", type=int, default=1027, help="mock images")
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    args = parser.parse_args()
    produced = provenance()
    with tempfile.TemporaryDirectory() as folder:
        files = dict(
            resolve(example, folder)
            for example in args.example
            or [os.path.join(ROOT, "gradient_centralization.py")]
        )
        if len(files) < len(args.example or [None]):
            sys.exit("two --example files have the same name")
        results = {label: [] for label in files}
        for repeat in range(args.repeats):
            order = list(files.items())[:: -1 if repeat % 2 else 1]
            for label, example in order:
                results[label].append(time_ratio(example, args, folder))
                run = results[label][-1]
                epochs = "; ".join(
                    f"{arm} " + ", ".join(f"{t:.2f}" for t in times)
                    for arm, times in run["epoch_times"].items()
                )
                print(
                    f"repeat {repeat + 1}, {label}: ratio {run['ratio']:.4f} "
                    f"(epoch times, s: {epochs})",
                    flush=True,
                )
            if args.json:
                write_report(args, produced, list(files), results)
    for example, runs in results.items():
        for measure, figures in summarize(runs).items():
            print(f"{example}, {MEASURES[measure]}: {describe(figures)}")


def summarize(runs):
    """Each measure's spread over the finished repeats."""
    return {measure: spread([run[measure] for run in runs]) for measure in MEASURES}


def write_report(args, produced, examples, results):
    config = {**vars(args), "example": examples, "json": relative(args.json)}
    summary = {
        f"{example}: {measure}": figures
        for example, runs in results.items()
        for measure, figures in summarize(runs).items()
    }
    report = {"produced": produced, "config": config, "runs": results}
    with open(args.json + ".tmp", "w") as file:
        json.dump({**report, "summary": summary}, file, indent=2)
    os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()

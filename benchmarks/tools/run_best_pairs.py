"""How do the two optimizers compare, each at its own learning rate? One pair per process.

    python benchmarks/tools/run_best_pairs.py OUT_DIR --seeds FIRST LAST \
        --rmsprop-learning-rate LR --gc-learning-rate LR [EXAMPLE FLAGS...]

For each seed from FIRST to LAST, a fresh process trains what the example's
`train_arm` trains: plain RMSprop at `--rmsprop-learning-rate`, then GCRMSprop at
`--gc-learning-rate`, both from that seed, so from the same start, on the same
batches, with the same augmentations and dropout masks; only the optimizer and its
learning rate differ. It writes the example's report (`add_pair`) to
OUT_DIR/seed_S.json; its `config` holds `learning_rate` (RMSprop's) and
`gc_learning_rate` (GC's), so that a reader sees both. A seed whose file exists is
skipped, so the same command resumes. Combine the files with
`benchmarks/tools/pairs_summary.py OUT_DIR/seed_*.json`. The example's other flags
(`--epochs`, `--batch-size`, `--mock-data`) pass through; `--seed`, `--runs`,
`--json` and `--learning-rate` are set here.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run_pairs import run_each_seed  # noqa: E402


def train_pair(seed, rmsprop_rate, gc_rate, report, example_flags):
    """One pair in this process, each optimizer at its rate; writes `report`."""
    import gradient_centralization as gc

    flags = ["--seed", str(seed), "--json", report, "--learning-rate", rmsprop_rate]
    gc.args = args = gc.parse_args(example_flags + flags)
    gc.runs = []  # What add_pair reports; the example sets both when run itself.
    args.gc_learning_rate = float(gc_rate)  # Recorded in the report's config.
    data = gc.load_data(args.mock_data)
    rates = {"rmsprop": args.learning_rate, "gc_rmsprop": args.gc_learning_rate}
    records = {}
    for key, (_, optimizer_class) in gc.arms.items():
        arm_args = argparse.Namespace(**{**vars(args), "learning_rate": rates[key]})
        records[key] = gc.train_arm(optimizer_class, seed, data, arm_args)
    gc.add_pair(seed, records)
    print(gc.format_pair(records))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder of the reports")
    parser.add_argument("--seeds", type=int, nargs=2, metavar=("FIRST", "LAST"))
    parser.add_argument("--rmsprop-learning-rate", metavar="LR", required=True)
    parser.add_argument("--gc-learning-rate", metavar="LR", required=True)
    parser.add_argument("--one-pair", action="store_true", help=argparse.SUPPRESS)
    args, example_flags = parser.parse_known_args(argv)
    if args.seeds is None or not 0 <= args.seeds[0] <= args.seeds[1]:
        parser.error("--seeds FIRST LAST: two seeds, 0 <= FIRST <= LAST")
    if {"--seed", "--runs", "--json", "--learning-rate"} & set(example_flags):
        parser.error(
            "--seed, --runs, --json and --learning-rate are set by this script"
        )
    for rate in (args.rmsprop_learning_rate, args.gc_learning_rate):
        try:
            if not 0 < float(rate) < float("inf"):
                raise ValueError
        except ValueError:
            parser.error(f"a learning rate must be a finite number above 0, not {rate}")
    rates = [args.rmsprop_learning_rate, args.gc_learning_rate]
    if args.one_pair:  # The child process: one pair.
        report = os.path.join(args.out_dir, f"seed_{args.seeds[0]}.json")
        return train_pair(args.seeds[0], *rates, report, example_flags)

    def pair_command(seed, _report):  # The child writes OUT_DIR/seed_S.json itself.
        command = [sys.executable, os.path.abspath(__file__), args.out_dir]
        command += ["--one-pair", "--seeds", str(seed), str(seed)]
        command += ["--rmsprop-learning-rate", rates[0], "--gc-learning-rate", rates[1]]
        return command + example_flags

    run_each_seed(args.out_dir, args.seeds, pair_command)


if __name__ == "__main__":
    main()

"""How to run a long comparison so that a stopped machine loses at most one pair?

    python benchmarks/tools/run_pairs.py OUT_DIR --seeds FIRST LAST [EXAMPLE FLAGS...]

Runs `gradient_centralization.py --seed S --runs 1 --json OUT_DIR/seed_S.json` with
the given example flags (e.g. `--learning-rate 1e-3`), one process per seed, for
each seed from FIRST to LAST. A seed whose file exists already is skipped, so the
same command resumes an interrupted comparison. Combine the files with
`benchmarks/tools/pairs_summary.py OUT_DIR/seed_*.json`.
"""

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "gradient_centralization.py")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder of the reports")
    parser.add_argument("--seeds", type=int, nargs=2, metavar=("FIRST", "LAST"))
    args, example_flags = parser.parse_known_args(argv)
    if args.seeds is None or not 0 <= args.seeds[0] <= args.seeds[1]:
        parser.error("--seeds FIRST LAST: two seeds, 0 <= FIRST <= LAST")
    if {"--seed", "--runs", "--json"} & set(example_flags):
        parser.error("--seed, --runs and --json are set per pair by this script")

    def example_command(seed, report):
        command = [sys.executable, EXAMPLE, "--seed", str(seed), "--runs", "1"]
        return command + ["--json", report, *example_flags]

    run_each_seed(args.out_dir, args.seeds, example_command)


def run_each_seed(out_dir, seeds, command_of):
    """Runs `command_of(seed, report)` in a process of its own for each seed from
    FIRST to LAST, where report is OUT_DIR/seed_S.json; a seed whose report exists
    is skipped, and a failed one stops the run."""
    os.makedirs(out_dir, exist_ok=True)
    for seed in range(seeds[0], seeds[1] + 1):
        report = os.path.join(out_dir, f"seed_{seed}.json")
        if os.path.exists(report):
            print(f"seed {seed}: {report} exists, skipped", flush=True)
            continue
        command = command_of(seed, report)
        print(f"seed {seed}: {' '.join(command)}", flush=True)
        if subprocess.run(command).returncode != 0:
            sys.exit(f"seed {seed}: the pair failed; {report} not written")


if __name__ == "__main__":
    main()

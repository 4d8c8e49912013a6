"""What does a process pay to touch memory for the first time: right after another
process freed it, and after it sat free for a while?

    python benchmarks/speed/first_touch.py [--gibibytes 4] [--waits 0 30]
        [--repeats 3] [--json PATH]

A probe for issue 33's first-arm penalty. Each measurement is two fresh processes:
the first maps `--gibibytes` of anonymous memory, writes one byte into each of its
4 KiB pages and exits, freeing it; then, after a wait of W seconds, the second does
the same and records its wall time, user and system CPU time and minor page faults.
Every wait of `--waits` is measured `--repeats` times, interleaved. The JSON also
records the kernel's free-page-reporting setting (`page_reporting` on its command
line): a guest kernel that reports free pages lets its host take them back, and
touching them again then costs more.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "experiments"))

from digits_gc_vs_rmsprop import provenance, relative  # noqa: E402

# The child: maps the memory (4 KiB pages: no huge-page advice), writes a byte into
# every page, and prints what that cost.
TOUCH = """
import json, mmap, resource, sys, time
size = int(float(sys.argv[1]) * 2**30)
before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
memory = mmap.mmap(-1, size)
memory[::4096] = b"\\1" * len(range(0, size, 4096))
wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "wall": wall,
    "user": after.ru_utime - before.ru_utime,
    "sys": after.ru_stime - before.ru_stime,
    "minflt": after.ru_minflt - before.ru_minflt,
}))
"""


def touch(gibibytes):
    result = subprocess.run(
        [sys.executable, "-c", TOUCH, str(gibibytes)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def page_reporting():
    """The kernel's `page_reporting.*` settings, from its command line."""
    try:
        with open("/proc/cmdline") as file:
            words = file.read().split()
    except OSError:
        return []
    return [word for word in words if word.startswith("page_reporting")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gibibytes", type=float, default=4, help="memory touched")
    parser.add_argument(
        "--waits", type=float, nargs="+", default=[0, 30], help="seconds between"
    )
    parser.add_argument("--repeats", type=int, default=3, help="measurements per wait")
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    args = parser.parse_args()
    produced = {**provenance(), "page_reporting": page_reporting()}
    results = {str(wait): [] for wait in args.waits}
    for repeat in range(args.repeats):
        for wait in args.waits:
            touch(args.gibibytes)  # Touches the memory, then frees it by exiting.
            time.sleep(wait)
            results[str(wait)].append(touch(args.gibibytes))
            figures = results[str(wait)][-1]
            print(
                f"repeat {repeat + 1}, wait {wait:g} s: wall {figures['wall']:.2f} s, "
                f"system {figures['sys']:.2f} s, {figures['minflt']} page faults",
                flush=True,
            )
    summary = {
        wait: {
            key: statistics.median(run[key] for run in runs)
            for key in ("wall", "user", "sys", "minflt")
        }
        for wait, runs in results.items()
    }
    for wait, figures in summary.items():
        print(f"wait {wait} s, medians: " + json.dumps(figures))
    if args.json:
        config = {**vars(args), "json": relative(args.json)}
        with open(args.json, "w") as file:
            json.dump(
                {
                    "produced": produced,
                    "config": config,
                    "runs": results,
                    "summary": summary,
                },
                file,
                indent=2,
            )


if __name__ == "__main__":
    main()

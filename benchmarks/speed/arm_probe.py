"""What does each arm of a pair spend in its warm epochs: wall time per step, CPU
time, page faults, busy threads and Python garbage collections?

    ORDER=rmsprop,gc_rmsprop,rmsprop PROBE_JSON=out.json \\
        python benchmarks/speed/arm_probe.py --mock-data 512 --epochs 4 \\
        --learning-rate 1e-30 [other flags of the example]

A probe for issue 33's first-arm penalty. It trains the example's arms with its own
`train_arm`, in the order `ORDER` names (any number of arms, each key of the
example's `arms`, all from `--seed`), and records for every epoch: its wall time (the
example's `TimeHistory`), each step's wall time, the process's user and system CPU
time, minor page faults and context switches (`getrusage`), the CPU time of each
thread that used more than 0.05 s (`/proc/self/task`, Linux only), the number of
threads, and Python's garbage collections (count, total pause, full ones).
`PROBE_PREP=tensors` first copies the training pictures into one in-memory tensor
(`from_tensor_slices`), so that no `cache()` is filled while an arm trains. Prints a
line per arm; `PROBE_JSON` writes all the records.
"""

import collections
import gc
import glob
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
import gradient_centralization as example  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
GC_PAUSES = []  # (generation, seconds) of every garbage collection.
_started = {}


def thread_cpu_seconds():
    """CPU seconds (user + system) of each live thread, by name and thread id."""
    found = collections.Counter()
    for stat in glob.glob("/proc/self/task/*/stat"):
        try:
            with open(stat) as file:
                text = file.read()
        except OSError:  # The thread ended meanwhile.
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        key = name.rstrip("0123456789-_ ") + ":" + stat.split("/")[-2]
        found[key] += (int(fields[11]) + int(fields[12])) / TICK
    return found


def time_collections(phase, info):
    if phase == "start":
        _started["at"] = time.perf_counter()
    else:
        GC_PAUSES.append((info["generation"], time.perf_counter() - _started["at"]))


class Probe(example.TimeHistory):
    """The example's timer, recording what each epoch and step spent."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.usage = resource.getrusage(resource.RUSAGE_SELF)
        self.threads, self.steps = thread_cpu_seconds(), []
        self.collections = len(GC_PAUSES)
        super().on_epoch_begin(epoch, logs)
        self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.steps.append(round(now - self.last, 3))
        self.last = now

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        usage, threads = resource.getrusage(resource.RUSAGE_SELF), thread_cpu_seconds()
        used = {key: threads[key] - self.threads.get(key, 0) for key in threads}
        pauses = GC_PAUSES[self.collections :]
        self.epochs.append(
            {
                "wall": round(self.times[-1], 3),
                "user": round(usage.ru_utime - self.usage.ru_utime, 2),
                "sys": round(usage.ru_stime - self.usage.ru_stime, 2),
                "minflt": usage.ru_minflt - self.usage.ru_minflt,
                "nvcsw": usage.ru_nvcsw - self.usage.ru_nvcsw,
                "nivcsw": usage.ru_nivcsw - self.usage.ru_nivcsw,
                "threads": sorted(
                    (round(s, 2) for s in used.values() if s > 0.05), reverse=True
                ),
                "nthreads": len(threads),
                # Count, total pause (s), and how many were full collections.
                "gc": [
                    len(pauses),
                    round(sum(p for _, p in pauses), 3),
                    sum(g == 2 for g, _ in pauses),
                ],
                "steps": self.steps,
            }
        )


def main():
    gc.callbacks.append(time_collections)
    timers = []  # train_arm builds its timer from this name: a Probe, kept here.
    example.TimeHistory = lambda: timers.append(Probe()) or timers[-1]
    args = example.parse_args(sys.argv[1:])
    example.args = args
    data = example.load_data(args.mock_data)
    if os.environ.get("PROBE_PREP") == "tensors":
        import numpy as np
        import tensorflow as tf

        pictures, labels = zip(*data[0].as_numpy_iterator())
        slices = (np.stack(pictures), np.stack(labels))
        data = (tf.data.Dataset.from_tensor_slices(slices), data[1])
    order = os.environ.get("ORDER", "rmsprop,gc_rmsprop").split(",")
    records = []
    for pair in range(args.runs):
        for key in order:
            example.train_arm(example.arms[key][1], args.seed + pair, data, args)
            records.append({"pair": pair + 1, "arm": key, "epochs": timers[-1].epochs})
            print("PROBE", key, json.dumps(timers[-1].epochs), flush=True)
    if os.environ.get("PROBE_JSON"):
        with open(os.environ["PROBE_JSON"], "w") as file:
            json.dump(records, file, indent=1)


if __name__ == "__main__":
    main()

"""benchmarks/speed/arm_probe.py: the arms run in ORDER, and each epoch's record holds
what the probe promises (its figures are benchmarks/results/arm_probe_cpu/'s)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_three_arms_in_order_each_epoch_recorded(tmp_path):
    environment = {
        **os.environ,
        "ORDER": "gc_rmsprop,rmsprop,gc_rmsprop",
        "PROBE_JSON": str(tmp_path / "probe.json"),
    }
    flags = ["--mock-data", "8", "--epochs", "2", "--batch-size", "4"]
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "speed", "arm_probe.py")]
        + flags,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "probe.json") as file:
        records = json.load(file)
    assert [r["arm"] for r in records] == ["gc_rmsprop", "rmsprop", "gc_rmsprop"]
    printed = [
        line.split()[1] for line in result.stdout.splitlines() if "PROBE" in line
    ]
    assert printed == ["gc_rmsprop", "rmsprop", "gc_rmsprop"]
    for record in records:
        assert len(record["epochs"]) == 2
        for epoch in record["epochs"]:
            assert len(epoch["steps"]) == 2  # 8 pictures in batches of 4.
            # The steps happen within the epoch the timer measured.
            assert 0 < sum(epoch["steps"]) <= epoch["wall"] + 0.01
            assert epoch["user"] >= 0 and epoch["minflt"] >= 0
            assert len(epoch["gc"]) == 3 and epoch["nthreads"] >= 1

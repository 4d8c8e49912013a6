"""benchmarks/speed/apply_cost.py: a few steps run, print the ratios and write the
JSON report. The figures themselves are benchmarks/results/apply_cost_torch.json's,
not a test's."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None and not os.environ.get("CI"),
    reason="the benchmark runs on PyTorch (pip install -r tests/requirements.txt)",
)


def in_git_checkout():
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
        cwd=ROOT,
        capture_output=True,
    )
    return result.returncode == 0


def test_a_few_steps_print_the_ratios_and_write_the_report(run_benchmark, tmp_path):
    # Both files from the working tree, so that no commit is needed.
    result = run_benchmark(
        "speed/apply_cost.py",
        "--example",
        "gradient_centralization.py",
        "--steps",
        "2",
        "--rounds",
        "2",
        "--threads",
        "1",
        "--json",
        "report.json",
    )
    assert "EfficientNetB0, 213 variables, PyTorch backend" in result.stdout
    assert "GC after / GC before:" in result.stdout
    for label in ("RMSprop", "GCRMSprop before", "GCRMSprop after"):
        assert any(line.startswith(label) for line in result.stdout.splitlines())
    with open(tmp_path / "report.json") as file:  # run_benchmark runs in tmp_path.
        report = json.load(file)
    assert set(report["produced"]) == {"date", "commit", "versions", "command"}
    assert report["produced"]["versions"]["backend"] == "torch"
    assert set(report["ms_per_step"]) == {"rmsprop", "gc_before", "gc_after"}
    assert set(report["gc_minus_rmsprop_ms"]) == {"before", "after"}
    assert set(report["ratio_to_rmsprop"]) == {"before", "after"}
    assert set(report["gc_own_ms"]) == {"before", "after"}
    assert "GC's own work per step" in result.stdout
    assert report["settings"]["rounds"] == 2
    assert report["after_over_before"] > 0
    assert report["before_minus_after_ms"]["rounds"] == 2


@pytest.mark.skipif(not in_git_checkout(), reason="not a git checkout")
def test_the_before_block_comes_from_a_commit(monkeypatch):
    # Importing the script sets KERAS_BACKEND=torch; monkeypatch restores it after
    # this test, so that later tests' subprocesses keep this process's backend.
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))
    sys.path.insert(0, os.path.join(ROOT, "benchmarks", "speed"))
    try:
        from apply_cost import copyable_block, read_source
    finally:
        sys.path.pop(0)
    block = copyable_block(read_source("HEAD:gradient_centralization.py"))
    assert block.startswith("import re\n\nimport keras\n\n\nATTENTION_KERNELS = ")
    assert "class GCRMSprop(GradientCentralization" in block

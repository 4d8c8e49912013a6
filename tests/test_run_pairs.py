"""benchmarks/tools/run_pairs.py: one process per pair, resumable."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "tools", "run_pairs.py")


def run(*flags, cwd):
    return subprocess.run(
        [sys.executable, SCRIPT, *flags], cwd=cwd, capture_output=True, text=True
    )


def test_one_report_per_seed_and_existing_ones_skipped(tmp_path):
    out = tmp_path / "pairs"
    out.mkdir()
    # A report already there is kept as it is.
    (out / "seed_5.json").write_text('{"kept": true}')
    flags = ("--mock-data", "8", "--epochs", "1", "--batch-size", "4")
    result = run(str(out), "--seeds", "4", "5", *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "seed 5: " in result.stdout and "exists, skipped" in result.stdout
    report = json.loads((out / "seed_4.json").read_text())
    assert [pair["seed"] for pair in report["runs"]] == [4]
    assert report["config"]["epochs"] == 1 and report["config"]["runs"] == 1
    assert json.loads((out / "seed_5.json").read_text()) == {"kept": True}


def test_bad_input_exits_2(tmp_path):
    for flags in (["--seeds", "5", "4"], ["--seeds", "1", "2", "--seed", "3"], []):
        result = run(str(tmp_path), *flags, cwd=tmp_path)
        assert result.returncode == 2, flags
        assert "Traceback" not in result.stderr

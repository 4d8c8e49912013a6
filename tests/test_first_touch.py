"""benchmarks/speed/first_touch.py: a small run to keep it working (not a timing
test), and the committed results benchmarks/README quotes."""

import json
import os
import statistics

from conftest import ROOT, flat_text

RESULTS = os.path.join(ROOT, "benchmarks", "results", "first_touch_cpu.json")


def test_first_touch_counts_a_fault_per_page(run_benchmark, tmp_path):
    run_benchmark(
        "speed/first_touch.py",
        *("--gibibytes", "0.01", "--waits", "0", "0.5", "--repeats", "2"),
        *("--json", "touch.json"),
    )
    report = json.loads((tmp_path / "touch.json").read_text())
    assert list(report["runs"]) == ["0.0", "0.5"]
    pages = len(range(0, int(0.01 * 2**30), 4096))
    for runs in report["runs"].values():
        assert len(runs) == 2
        # One write per 4 KiB page: at least one fault per page, and few more.
        assert all(pages <= run["minflt"] < pages + 1000 for run in runs)
    assert report["config"]["json"] == "touch.json"


def test_benchmarks_readme_quotes_the_medians():
    with open(RESULTS) as file:
        report = json.load(file)
    medians = {
        wait: statistics.median(run["sys"] for run in runs)
        for wait, runs in report["runs"].items()
    }
    assert medians == {
        wait: figures["sys"] for wait, figures in report["summary"].items()
    }
    readme = flat_text("benchmarks", "README.md")
    quote = "{:.1f} s of system time right after, {:.1f} s after 30 s".format(
        medians["0.0"], medians["30.0"]
    )
    assert quote in readme

"""A small run of benchmarks/speed/augmentation_pipeline_cpu.py, to keep it working
(not a timing test)."""

import json


def test_augmentation_pipeline_cpu_runs_and_reports_ratios(run_benchmark, tmp_path):
    result = run_benchmark(
        "speed/augmentation_pipeline_cpu.py",
        "--examples",
        "16",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--gc-steps",
        "1",
        "--json",
        "bench.json",
    )
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["ratios"]) == {
        "epoch_time_ratio",
        "gc_overhead",
        "peak_rss_ratio",
    }
    assert all(value > 0 for value in results["ratios"].values())
    assert (
        results["ratios"]["epoch_time_ratio"]
        == results["project"]["epoch_time"] / results["seed"]["epoch_time"]
    )
    for name in ("seed", "project"):
        assert [len(times) for times in results[name]["epoch_times"]] == [2, 2]
        assert results[name]["peak_rss_gib"] > 0.3
    assert "epoch_time_ratio:" in result.stdout and "peak_rss_ratio:" in result.stdout

"""tools/bench_load.py: the summary and report of the keep-alive load runs."""

from __future__ import annotations

import pytest

from tools import bench_load


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(x) for x in range(1, 101)]
    assert bench_load.percentile(values, 99) == pytest.approx(99.01)
    assert bench_load.percentile([5.0], 99) == 5.0


RUNS = {
    "pristine": [
        {"latencies_s": [0.001, 0.002, 0.003], "total_s": 4.0},
        {"latencies_s": [0.002], "total_s": 6.0},
    ],
    "patched": [{"latencies_s": [0.001, 0.001, 0.002, 0.002], "total_s": 4.5}],
}


def test_summarize_load_ratios() -> None:
    summary = bench_load.summarize_load(RUNS)
    assert summary["sides"]["pristine"]["median_ms"] == pytest.approx(2.0)
    assert summary["sides"]["pristine"]["total_s"] == 5.0  # median of rounds
    assert summary["ratio_patched_pristine"]["median_ms"] == pytest.approx(0.75)
    assert summary["ratio_patched_pristine"]["total_s"] == pytest.approx(0.9)


def test_render_load_tabulates_both_trees_and_the_ratio() -> None:
    meta = {
        "requests": 10_000,
        "concurrency": 20,
        "warmup": 1_000,
        "rounds": 2,
        "machine": {"cpu": "Xeon", "cores": 2, "date": "2026-01-01"},
    }
    text = bench_load.render_load(bench_load.summarize_load(RUNS), meta)
    assert "10,000 GETs" in text and "concurrency 20" in text
    assert "| pristine | 2.000 ms |" in text
    assert "| patched | 1.500 ms |" in text
    assert "| patched/pristine | 0.7500 |" in text
    assert "Xeon, 2 cores" in text

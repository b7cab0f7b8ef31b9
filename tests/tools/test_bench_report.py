"""tools/bench_report.py: figures, ratios, targets, parsing, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import bench_report as bench
from tools.bench_report import A, B, BenchError, E, Target

URI = "bench/test_client_bench.py::"

# One part as callgrind 3.19 writes it for CALLGRIND_DUMP_STATS_AT(uri),
# trimmed to a single function.
PART = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  /venv/bin/python -m pytest bench/ --codspeed
part: {part}


desc: I1 cache: 
desc: D1 cache: 
desc: LL cache: 

desc: Timerange: Basic block 0 - 13942729
desc: Trigger: {trigger}

positions: line
events: {events}
summary: 0


ob=(13) /venv/lib/python3.11/lib-dynload/_socket.cpython-311-x86_64-linux-gnu.so
fl=(139) /build/Python-3.11.7/Modules/socketmodule.c
fn=(2298) sock_send
4191 300
+5 300

totals: {totals}
"""  # noqa: W291 (callgrind writes the trailing blanks)


def write_part(
    directory: Path, n: int, trigger: str, totals: str, events: str = "Ir"
) -> Path:
    path = (
        directory / f"callgrind.4242.out.{n}" if n else directory / "callgrind.4242.out"
    )
    path.write_text(PART.format(part=n, trigger=trigger, totals=totals, events=events))
    return path


def figures(**values: float) -> dict[str, dict[str, float]]:
    """figures(pristine_a=..., patched_b=...) -> {side: {benchmark: value}}."""
    names = {"a": A, "b": B, "e": E}
    out: dict[str, dict[str, float]] = {"pristine": {}, "patched": {}}
    for key, value in values.items():
        side, short = key.rsplit("_", 1)
        out[side][names[short]] = value
    return out


def test_ratio_is_patched_over_pristine() -> None:
    assert bench.ratio(97, 100) == pytest.approx(0.97)
    with pytest.raises(BenchError):
        bench.ratio(1, 0)


@pytest.mark.parametrize(
    ("patched", "verdict"), [(96.9, "met"), (97.0, "met"), (97.1, "MISSED")]
)
def test_upper_bound_target(patched: float, verdict: str) -> None:
    target = bench.TARGETS[0]  # a) patched <= 0.97 x pristine
    result = bench.evaluate(target, figures(pristine_a=100, patched_a=patched))
    assert result["verdict"] == verdict
    assert result["met"] is (verdict == "met")
    line = bench.target_line(result)
    assert line.startswith(f"- **{verdict}**: a) default timeout")
    assert f"ratio {patched / 100:.4f}, needs <= 0.97" in line


@pytest.mark.parametrize(
    ("b", "met"), [(1002.9, True), (997.1, True), (1003.2, False), (996.8, False)]
)
def test_window_target_b_vs_a_in_patched(b: float, met: bool) -> None:
    target = bench.TARGETS[2]  # patched b within 0.3 % of patched a
    # pristine figures must not matter for this target
    result = bench.evaluate(target, figures(patched_a=1000, patched_b=b, pristine_b=1))
    assert result["met"] is met
    assert result["bound"] == "within [0.997, 1.003]"


def test_create_path_target_allows_one_percent_more() -> None:
    target = bench.TARGETS[3]
    assert bench.evaluate(target, figures(pristine_e=100, patched_e=100.9))["met"]
    assert not bench.evaluate(target, figures(pristine_e=100, patched_e=101.1))["met"]


def test_target_without_figures_is_not_measured() -> None:
    target = Target("x", ("patched", A), ("pristine", A), 1.0)
    result = bench.evaluate(target, figures(pristine_a=100))
    assert result["verdict"] == "not measured" and result["met"] is None
    assert bench.target_line(result) == "- **not measured**: x"


def test_summarize_takes_medians_in_suite_order() -> None:
    samples = {
        "pristine": {E: [300.0, 100.0, 200.0], B: [5.0], A: [10.0, 30.0, 20.0]},
        "patched": {E: [150.0, 150.0, 150.0], B: [5.0], A: [18.0, 19.0, 40.0]},
    }
    rows = bench.summarize(samples)
    # a), b), e) as in BENCHMARKS: neither insertion nor alphabetical order
    assert [r["name"] for r in rows] == [A, B, E]
    a, _, e = rows
    assert (a["pristine"], a["patched"], a["ratio"]) == (20.0, 19.0, 0.95)
    assert e["ratio"] == 0.75
    assert e["pristine_spread"] == 1.0  # (300 - 100) / 200
    assert e["patched_spread"] == 0.0


def test_summarize_refuses_a_benchmark_missing_on_one_side() -> None:
    with pytest.raises(BenchError, match="not on patched"):
        bench.summarize({"pristine": {A: [1.0]}, "patched": {}})
    with pytest.raises(BenchError, match="not on 3.10.11"):
        bench.summarize({"pristine": {A: [1.0]}, "patched": {A: [1.0]}, "3.10.11": {}})


def test_summarize_compares_further_trees_with_pristine_and_patched() -> None:
    samples = {
        "pristine": {A: [100.0]},
        "patched": {A: [96.0]},
        "3.10.11": {A: [94.0]},
        "previous": {A: [95.0]},
    }
    [row] = bench.summarize(samples)
    assert row["3.10.11"] == 94.0
    assert row["ratio"] == 0.96  # patched/pristine, what the targets use
    assert row["ratios"] == pytest.approx(
        {
            "patched/pristine": 0.96,
            "3.10.11/pristine": 0.94,
            "previous/pristine": 0.95,
            "patched/3.10.11": 96 / 94,
            "patched/previous": 96 / 95,
        }
    )
    assert list(row["ratios"]) == bench.ratio_names(list(samples))


def test_parse_callgrind_reads_trigger_and_total(tmp_path: Path) -> None:
    path = write_part(tmp_path, 2, f"Client Request: {URI}{A}", "68367274")
    assert bench.parse_callgrind(path) == (f"Client Request: {URI}{A}", 68367274)


def test_parse_callgrind_picks_ir_among_several_events(tmp_path: Path) -> None:
    path = write_part(tmp_path, 2, "Program termination", "7 1234 99", "Dr Ir Dw")
    assert bench.parse_callgrind(path) == ("Program termination", 1234)


def test_parse_callgrind_refuses_truncated_output(tmp_path: Path) -> None:
    path = write_part(tmp_path, 2, "Program termination", "1")
    path.write_text(path.read_text().replace("totals: 1\n", ""))
    with pytest.raises(BenchError, match="no totals"):
        bench.parse_callgrind(path)


def test_collect_parts_keeps_benchmark_dumps_only(tmp_path: Path) -> None:
    write_part(tmp_path, 0, "Program termination", "0")
    write_part(tmp_path, 1, "Client Request: Metadata: pytest-codspeed 5.0.4", "0")
    pa = write_part(tmp_path, 2, f"Client Request: {URI}{A}", "680")
    pb = write_part(tmp_path, 3, f"Client Request: {URI}{B}", "700")
    (tmp_path / "run.log").write_text("not a callgrind file")
    assert bench.collect_parts(tmp_path) == {A: (680, pa), B: (700, pb)}


def test_collect_parts_refuses_a_benchmark_dumped_twice(tmp_path: Path) -> None:
    write_part(tmp_path, 2, f"Client Request: {URI}{A}", "680")
    write_part(tmp_path, 3, f"Client Request: {URI}{A}", "681")
    with pytest.raises(BenchError, match="dumped twice"):
        bench.collect_parts(tmp_path)


def test_parse_walltime_reads_best_time_per_benchmark(tmp_path: Path) -> None:
    result = {
        "instrument": {"type": "walltime"},
        "benchmarks": [
            {"name": A, "stats": {"min_ns": 1.5e7, "median_ns": 2e7, "mean_ns": 3e7}},
            {"name": E, "stats": {"min_ns": 4.9e7, "median_ns": 6e7, "mean_ns": 7e7}},
        ],
    }
    path = tmp_path / "123.json"
    path.write_text(json.dumps(result))
    assert bench.parse_walltime([path]) == {A: 1.5e7, E: 4.9e7}


ANNOTATE = """\
--------------------------------------------------------------------------------
Ir                  
--------------------------------------------------------------------------------
68,321,575 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
17,932,663 (26.25%)  /b/Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault'2 [/py/lib/libpython3.11.so.1.0]
    23,926 ( 0.04%)  /b/Python-3.11.7/Modules/_heapqmodule.c:siftdown [{venv}/lib-dynload/_heapq.so]
     1,000 ( 0.00%)  ???:0x0000000000431230 [{venv}/bin/python]
"""  # noqa: E501, W291


def test_parse_annotate_normalises_names_across_venvs() -> None:
    pristine = bench.parse_annotate(ANNOTATE.format(venv="/v/pristine"))
    patched = bench.parse_annotate(ANNOTATE.format(venv="/v/patched"))
    assert (
        pristine
        == patched
        == {
            "ceval.c:_PyEval_EvalFrameDefault'2": 17_932_663,
            "_heapqmodule.c:siftdown": 23_926,
            "???:0x0000000000431230": 1_000,
        }
    )


def test_delta_table_orders_by_largest_move() -> None:
    table = bench.delta_table(
        {"f": 100, "g": 50, "h": 7}, {"f": 90, "g": 80, "k": 1}, 3
    )
    lines = table.splitlines()
    assert lines[0].split() == ["pristine", "patched", "delta", "function"]
    assert [line.split()[-1] for line in lines[1:]] == ["g", "f", "h"]
    assert lines[1].split()[:3] == ["50", "80", "+30"]
    assert lines[3].split()[:3] == ["7", "0", "-7"]


def report(mode: str = "instructions") -> dict:
    samples = {
        "pristine": {A: [1_000_000.0], B: [1_000_000.0], E: [2_000_000.0]},
        "patched": {A: [960_000.0], B: [950_000.0], E: [2_030_000.0]},
    }
    samples["3.10.11"] = {A: [940_000.0], B: [930_000.0], E: [1_980_000.0]}
    rows = bench.summarize(samples)
    figs = {s: {r["name"]: r[s] for r in rows} for s in bench.SIDES}
    interp = {
        "python": "3.11.7",
        "aiohttp": "3.10.10",
        "c_extensions": True,
        "pytest_codspeed": "5.0.4",
        "executable": "/venv/bin/python",
    }
    return {
        "mode": mode,
        "method": "callgrind",
        "unit": bench.UNITS[mode],
        "rounds": 1,
        "machine": {
            "cpu": "Xeon",
            "cores": 2,
            "platform": "Linux",
            "loadavg": "0",
            "valgrind": "valgrind-3.19.0",
            "date": "2024-10-10",
        },
        "interpreters": {
            "pristine": interp,
            "patched": interp,
            "3.10.11": {**interp, "aiohttp": "3.10.11"},
        },
        "benchmarks": rows,
        "targets": [bench.evaluate(t, figs) for t in bench.TARGETS],
        "warnings": [],
    }


def test_render_report_states_figures_machine_and_missed_targets() -> None:
    text = bench.render_report(report())
    assert (
        "| benchmark | pristine | patched | 3.10.11 | patched/pristine | "
        "3.10.11/pristine | patched/3.10.11 |"
    ) in text
    assert (
        "| a) keep-alive, default timeout | 1,000,000 | 960,000 | 940,000 | "
        "0.9600 | 0.9400 | 1.0213 | 10,000.0 → 9,600.0 |"
    ) in text
    assert "- 3.10.11: Python 3.11.7, aiohttp 3.10.11" in text
    assert "Xeon, 2 cores" in text and "valgrind-3.19.0" in text
    assert "- **met**: a) default timeout" in text
    assert (
        "- **MISSED**: b) connect=10: patched <= 0.93 x pristine: ratio 0.9500" in text
    )
    assert "- **MISSED**: patched: connect=10 within 0.3 % of connect=None" in text
    assert "- **MISSED**: e) new connection per request" in text
    assert "3 of 4 targets missed." in text


def test_render_report_flags_walltime_targets_as_indicative() -> None:
    assert "only indicative" in bench.render_report(report("walltime"))
    assert "only indicative" not in bench.render_report(report("instructions"))

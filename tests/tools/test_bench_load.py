"""tools/bench_load.py and bench_load_report.py: the keep-alive load runs,
their summary and report.

Synthetic figures only: no server, no client, no valgrind.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pytest

from tools import bench, bench_load
from tools import bench_load_report as report
from tools.bench_report import BenchError


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(x) for x in range(1, 101)]
    assert report.percentile(values, 99) == pytest.approx(99.01)
    assert report.percentile([5.0], 99) == 5.0


def test_t975_is_students_t_and_conservative_past_the_table() -> None:
    assert report.t975(1) == 12.706
    assert report.t975(4) == 2.776
    assert report.t975(100) == report.t975(30) > 1.96
    with pytest.raises(BenchError, match="two rounds"):
        report.t975(0)


def test_paired_ratios_interval_on_the_logs_of_the_ratios() -> None:
    # logs 0.1 and 0.3: mean 0.2, sd 0.1 * sqrt(2), n 2, t(0.975, 1) 12.706
    p = report.paired_ratios([math.exp(0.1) * 2, math.exp(0.3) * 4], [2.0, 4.0])
    half = 12.706 * 0.1 * math.sqrt(2) / math.sqrt(2)
    assert p["geomean"] == pytest.approx(math.exp(0.2))
    assert p["low"] == pytest.approx(math.exp(0.2 - half))
    assert p["high"] == pytest.approx(math.exp(0.2 + half))
    assert p["ratios"] == pytest.approx([math.exp(0.1), math.exp(0.3)])
    assert p["verdict"] == "no significant difference"


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ([1.10, 1.11, 1.09, 1.10, 1.12], "slower"),
        ([0.90, 0.91, 0.89, 0.92, 0.90], "faster"),
        ([0.90, 1.10, 0.95, 1.05, 1.00], "no significant difference"),
        ([1.08], "one round: no interval"),
    ],
)
def test_paired_ratios_verdict(ratios: list[float], expected: str) -> None:
    den = [0.8 + 0.1 * i for i in range(len(ratios))]  # a drifting machine
    p = report.paired_ratios([r * d for r, d in zip(ratios, den)], den)
    assert p["verdict"] == expected
    if p["low"] is not None:
        assert p["low"] < p["geomean"] < p["high"]


def test_paired_ratios_needs_as_many_rounds_on_each_side() -> None:
    with pytest.raises(BenchError, match="cannot pair 2 rounds with 1"):
        report.paired_ratios([1.0, 2.0], [1.0])


def run(total: float, latencies_ms: list[float]) -> dict[str, Any]:
    return {"total_s": total, "latencies_s": [x / 1e3 for x in latencies_ms]}


RUNS = {
    "pristine": [run(4.0, [1, 2, 3]), run(6.0, [2, 2, 2])],
    "patched": [run(4.4, [1, 1, 2, 2]), run(6.6, [2, 2])],
    "3.10.11": [run(3.6, [1, 1, 1]), run(6.0, [1, 2, 3])],
}


def test_summarize_load_pools_latencies_and_pairs_rounds() -> None:
    summary = report.summarize_load(RUNS)
    s = summary["sides"]
    assert s["pristine"]["median_ms"] == pytest.approx(2.0)
    assert s["pristine"]["total_s"] == 5.0  # median of rounds
    assert s["patched"]["median_ms"] == pytest.approx(2.0)
    assert s["3.10.11"]["totals_s"] == [3.6, 6.0]
    paired = summary["paired"]
    assert set(paired) == {"patched/pristine", "3.10.11/pristine"}
    total = paired["patched/pristine"]["total_s"]
    assert total["ratios"] == pytest.approx([1.1, 1.1])
    assert total["geomean"] == pytest.approx(1.1)
    assert total["verdict"] == "slower"  # the same ratio twice: no spread
    # per round, not pooled: round 1 medians 1.5 / 2, round 2 2 / 2
    med = paired["patched/pristine"]["median_ms"]
    assert med["ratios"] == pytest.approx([0.75, 1.0])
    assert paired["3.10.11/pristine"]["total_s"]["ratios"] == pytest.approx([0.9, 1])


def test_summarize_load_needs_pristine() -> None:
    with pytest.raises(BenchError, match="no pristine"):
        report.summarize_load({"patched": RUNS["patched"]})


COUNTS = {  # instructions per run of 1,000 requests, three rounds
    "pristine": [444e6, 443e6, 445e6],
    "patched": [445e6, 441e6, 444e6],
    "3.10.11": [392e6, 391e6, 390e6],
}


def test_summarize_instructions_per_request_and_paired_ratios() -> None:
    ins = report.summarize_instructions(COUNTS, requests=1_000)
    assert ins["trees"]["pristine"]["per_request"] == pytest.approx(444_000)
    assert ins["trees"]["patched"]["per_request"] == pytest.approx(444_000)
    assert ins["trees"]["pristine"]["spread"] == pytest.approx(2 / 444)
    assert ins["trees"]["patched"]["samples"] == pytest.approx([445e3, 441e3, 444e3])
    paired = ins["paired"]
    assert set(paired) == {"patched/pristine", "3.10.11/pristine", "patched/3.10.11"}
    assert paired["patched/pristine"]["ratios"] == pytest.approx(
        [445 / 444, 441 / 443, 444 / 445]
    )
    assert paired["patched/pristine"]["verdict"] == "no significant difference"
    assert paired["3.10.11/pristine"]["verdict"] == "fewer"
    assert paired["patched/3.10.11"]["verdict"] == "more"
    claim = ins["claim"]
    assert claim["saving"] == pytest.approx(1 - paired["patched/pristine"]["geomean"])
    assert not claim["confirmed"]
    assert "no significant difference" in claim["verdict"]


@pytest.mark.parametrize(
    ("patched", "confirmed", "words"),
    [
        ([85.0, 86.0, 84.0], True, "confirms the claim"),
        ([89.0, 89.9, 88.1], True, "confirms the claim"),  # 11 %: 3/4 of 13.5 %
        ([101.0, 100.0, 99.5], False, "no significant difference"),
        ([98.0, 99.0, 97.0], False, "real but only about 15% of it"),
        ([101.0, 102.0, 100.0], False, "runs more instructions"),
        ([98.0], False, "one round: no interval"),
    ],
)
def test_claim_check(patched: list[float], confirmed: bool, words: str) -> None:
    pristine = [100.0, 101.0, 99.0][: len(patched)]
    paired = report.paired_ratios(patched, pristine, report.COUNT_WORDS)
    claim = report.claim_check(paired)
    assert claim["confirmed"] is confirmed
    assert words in claim["verdict"]
    assert claim["saving"] == pytest.approx(1 - paired["geomean"])


def test_cpu_plan_pins_server_and_client_apart_when_it_can() -> None:
    assert bench_load.cpu_plan({3, 1, 2}) == {
        "available": [1, 2, 3],
        "server": 1,
        "client": 2,
    }
    one = bench_load.cpu_plan({5})
    assert one["server"] is None and one["client"] is None
    assert "not pinned" in report.cpu_line(one)
    assert "server pinned to CPU 1, every client to CPU 2" in report.cpu_line(
        bench_load.cpu_plan({1, 2})
    )


META = {
    "requests": 10_000,
    "concurrency": 20,
    "warmup": 1_000,
    "rounds": 2,
    "instr_rounds": 3,
    "instr_requests": 1_000,
    "instr_warmup": 200,
    "cpus": {"available": [0, 1], "server": 0, "client": 1},
    "loadavg_start": "1.50 1.40 1.30",
    "machine": {
        "cpu": "Xeon",
        "cores": 2,
        "date": "2026-01-01",
        "loadavg": "1.70 1.50 1.35",
    },
    "interpreters": {
        "pristine": {"python": "3.11.7", "aiohttp": "3.10.10", "c_extensions": True}
    },
}


def test_render_load_shows_counts_claim_intervals_and_machine() -> None:
    summary = report.summarize_load(RUNS)
    ins = report.summarize_instructions(COUNTS, requests=1_000)
    text = report.render_load(summary, ins, META)
    assert "10,000 GETs" in text and "concurrency 20" in text
    assert "server pinned to CPU 0, every client to CPU 1" in text
    assert "1.50 1.40 1.30 at the start, 1.70 1.50 1.35 at the end" in text
    assert "- pristine: Python 3.11.7, aiohttp 3.10.10 (C extensions: yes)" in text
    # instructions; by hand: logs of 445/444, 441/443, 444/445 have mean
    # -0.0015083 and sd 0.0034478, t(0.975, 2) = 4.303
    assert "| pristine | 444,000 | 0.45% |" in text
    assert "| patched | 444,000 | 0.90% |" in text
    assert "| 3.10.11 | 391,000 | 0.51% |" in text
    assert (
        "| patched/pristine | 0.9985 | [0.9900, 1.0071] | no significant difference "
        "| 0.9955–1.0023 |" in text
    )
    assert "| 3.10.11/pristine | 0.8806 | [0.8716, 0.8898] | fewer |" in text
    assert "| patched/3.10.11 | 1.1338 | [1.1204, 1.1474] | more |" in text
    assert "~13.5% of the request time" in text
    fewer = "0.15% fewer instructions per request than pristine (3.10.11: 11.94% fewer)"
    assert fewer in text
    assert "**does not confirm the claim: no significant difference" in text
    # wall clock
    assert "| pristine | 2.000 ms |" in text
    assert "| patched/pristine | total time | 1.1000 | [1.1000, 1.1000] | slower |" in (
        text
    )
    assert "| patched/pristine | median latency | 0.8660 | [" in text
    assert "no significant difference" in text
    assert text.endswith("![latency per request](load.png)\n")


def test_render_load_without_instruction_rounds() -> None:
    text = report.render_load(report.summarize_load(RUNS), None, META)
    assert "Not measured (--instr-rounds 0)." in text
    assert "| patched/pristine | total time |" in text


def test_client_runs_under_callgrind_with_instrumentation_off_at_start(
    tmp_path: Path,
) -> None:
    client = bench_load.client_cmd(
        Path("/py"),
        "http://127.0.0.1:1/",
        tmp_path / "o.json",
        "patched round 1",
        60.0,
        requests=1_000,
        concurrency=20,
        warmup=200,
        cpu=1,
    )
    assert client[-2:] == ["--cpu", "1"]
    cmd = bench_load.callgrind_cmd(client, tmp_path)
    assert cmd[:3] == ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    assert cmd[4:-1] == client and cmd[-1] == "--instructions"
    kwargs: dict[str, Any] = {"requests": 1, "concurrency": 1, "warmup": 1}
    unpinned = bench_load.client_cmd(
        Path("/py"), "u", tmp_path, "l", 1, **kwargs, cpu=None
    )
    assert "--cpu" not in unpinned


def test_count_client_reads_the_part_bench_load_dumps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import load

    def fake_valgrind(
        cmd: list[str], env: dict[str, str], log: Path, timeout: float
    ) -> None:
        assert env["CODSPEED_ENV"] == "1" and env["PYTHONHASHSEED"] == "2"
        dest = Path(env["CODSPEED_PROFILE_FOLDER"])
        (dest / "callgrind.7.out").write_text(
            "desc: Trigger: Program termination\nevents: Ir\ntotals: 0\n"
        )
        (dest / "callgrind.7.out.1").write_text(
            f"desc: Trigger: Client Request: {load.INSTRUMENTED_URI}\n"
            "events: Ir\ntotals: 443000000\n"
        )

    monkeypatch.setattr(bench_load, "run_logged", fake_valgrind)
    args = argparse.Namespace(instr_requests=1_000, concurrency=20, instr_warmup=200)
    dest = tmp_path / "instructions-round3-patched"
    count = bench_load.count_client(args, Path("/py"), "u", dest, 2, 60.0, 1)
    assert count == 443_000_000

    monkeypatch.setattr(bench_load, "run_logged", lambda *a, **k: None)
    with pytest.raises(BenchError, match="no instruction count"):
        bench_load.count_client(args, Path("/py"), "u", tmp_path / "x", 0, 60.0, 1)


def test_load_command_measures_3_10_11_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run_load(args: argparse.Namespace, pythons: dict[str, Path]) -> None:
        seen.update(args=args, pythons=pythons)
        (args.out / "load.md").write_text("# Load\n")

    monkeypatch.setattr(bench, "ensure_upgrade_venv", lambda: Path("/up/python"))
    monkeypatch.setattr(bench, "run_load", run_load)
    assert bench.main(["load", "--no-record", "--out", str(tmp_path)]) == 0
    assert list(seen["pythons"]) == ["pristine", "patched", "3.10.11"]
    args = seen["args"]
    assert (args.rounds, args.instr_rounds, args.instr_requests) == (10, 5, 1_000)


def test_load_command_refuses_a_warmup_that_opens_connections_while_counting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["load", "--no-upgrade", "--no-record", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        bench.main(argv + ["--instr-warmup", "10", "--concurrency", "20"])
    assert "--instr-warmup must be at least --concurrency" in capsys.readouterr().err


def test_a_negative_saving_reads_as_more_instructions() -> None:
    assert report.fewer(0.0213) == "2.13% fewer"
    assert report.fewer(-0.0197) == "1.97% more"

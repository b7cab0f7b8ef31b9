"""The summary and report of `python -m tools.bench load`: pure functions
over what tools/bench_load.py measured.

Wall clock: per tree the latencies and total times; per round each tree's
ratio to pristine, with the geometric mean of those ratios and its 95 %
confidence interval. Instructions: the client's count per request, as
`make bench` summarizes its benchmarks, set beside the original report's
claim. Rendered as load.md and plotted as load.png.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from tools.bench_report import BenchError, ratio, summarize

# aiohttp issue #9598: "Avoiding the timeout saves ~13.5% of the request time".
CLAIM = 0.135
CONFIRMS = 0.75  # a measured saving of at least this share of CLAIM confirms it
COUNTED = "client"  # the part bench/load.py dumps ("bench/load.py::client")
# per-round figures compared between trees (all times: lower is faster)
METRICS = {
    "total_s": "total time",
    "median_ms": "median latency",
    "p99_ms": "p99 latency",
}
TIME_WORDS = ("faster", "slower")  # a ratio of times below 1, above 1
COUNT_WORDS = ("fewer", "more")  # the same for instruction counts
# Student's t, two-sided 95 % (the 0.975 quantile), for 1 to 30 degrees of
# freedom; more use 30's, which makes the interval a little wider.
T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def t975(df: int) -> float:
    if df < 1:
        raise BenchError("a confidence interval needs at least two rounds")
    return T975[min(df, len(T975)) - 1]


def verdict(
    low: float | None, high: float | None, words: tuple[str, str] = TIME_WORDS
) -> str:
    """What a ratio's 95 % interval says: words[0] when it lies below 1."""
    if low is None or high is None:
        return "one round: no interval"
    if low <= 1.0 <= high:
        return "no significant difference"
    return words[0] if high < 1.0 else words[1]


def paired_ratios(
    num: list[float], den: list[float], words: tuple[str, str] = TIME_WORDS
) -> dict[str, Any]:
    """Per-round ratios num[i] / den[i], their geometric mean and its 95 %
    confidence interval: Student's t on the logs of the ratios,
    exp(mean ± t(0.975, n - 1) · sd / √n). Logs, because a ratio of 0.5 and
    one of 2 are the same size of change."""
    if len(num) != len(den) or not num:
        raise BenchError(f"cannot pair {len(num)} rounds with {len(den)}")
    ratios = [ratio(n, d) for n, d in zip(num, den)]
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    low = high = None
    if len(logs) > 1:
        half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        low, high = math.exp(mean - half), math.exp(mean + half)
    return {
        "ratios": ratios,
        "geomean": math.exp(mean),
        "low": low,
        "high": high,
        "verdict": verdict(low, high, words),
    }


def round_figures(run: dict[str, Any]) -> dict[str, float]:
    lat = run["latencies_s"]
    return {
        "total_s": run["total_s"],
        "median_ms": statistics.median(lat) * 1e3,
        "p99_ms": percentile(lat, 99) * 1e3,
    }


def summarize_load(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per tree: median and p99 latency over all rounds, total = median round
    time; per tree other than pristine: its paired ratios to pristine."""
    if "pristine" not in runs:
        raise BenchError("load: no pristine runs to compare with")
    per_round = {tree: [round_figures(run) for run in rs] for tree, rs in runs.items()}
    sides = {}
    for tree, tree_runs in runs.items():
        lat = [x for run in tree_runs for x in run["latencies_s"]]
        sides[tree] = {
            "median_ms": statistics.median(lat) * 1e3,
            "p99_ms": percentile(lat, 99) * 1e3,
            "total_s": statistics.median(run["total_s"] for run in tree_runs),
            "totals_s": [run["total_s"] for run in tree_runs],
        }
    base = per_round["pristine"]
    paired = {
        f"{tree}/pristine": {
            m: paired_ratios([f[m] for f in figs], [f[m] for f in base])
            for m in METRICS
        }
        for tree, figs in per_round.items()
        if tree != "pristine"
    }
    return {"sides": sides, "per_round": per_round, "paired": paired}


def claim_check(paired: dict[str, Any]) -> dict[str, Any]:
    """The patched client's instruction saving over pristine (from the
    paired ratios' geometric mean), set beside the original report's ~13.5 %
    of the request time."""
    saving = 1 - paired["geomean"]
    confirmed = saving >= CONFIRMS * CLAIM
    if confirmed:
        words = "confirms the claim"
    elif paired["verdict"] == "no significant difference":
        words = (
            "does not confirm the claim: no significant difference (the 95 % "
            "interval spans 1.0)"
        )
    elif paired["low"] is None:
        words = "does not confirm the claim (one round: no interval)"
    elif paired["verdict"] == "fewer":
        words = (
            "does not confirm the claim: the saving is real but only about "
            f"{saving / CLAIM:.0%} of it"
        )
    else:
        words = "does not confirm the claim: the patched client runs more instructions"
    return {"saving": saving, "confirmed": confirmed, "verdict": words}


def summarize_instructions(
    samples: dict[str, list[float]], requests: int
) -> dict[str, Any]:
    """Per tree: the client's instructions per request (median over rounds)
    and their spread; per pair of trees (those `make bench` shows), the
    ratios paired by round (same hash seed, adjacent in time) with their
    95 % interval; the claim."""
    rows = summarize(
        {tree: {COUNTED: [v / requests for v in vs]} for tree, vs in samples.items()}
    )
    row = rows[0]
    trees = {
        tree: {
            "per_request": row[tree],
            "spread": row[f"{tree}_spread"],
            "samples": row[f"{tree}_samples"],
        }
        for tree in samples
    }
    paired = {}
    for pair in row["ratios"]:
        num, den = pair.split("/")
        paired[pair] = paired_ratios(samples[num], samples[den], COUNT_WORDS)
    return {
        "requests": requests,
        "trees": trees,
        "paired": paired,
        "claim": claim_check(paired["patched/pristine"]),
    }


def cpu_line(cpus: dict[str, Any]) -> str:
    available = ", ".join(map(str, cpus["available"]))
    if cpus["server"] is None:
        return f"CPUs: not pinned, the run may use only CPU {available}."
    return (
        f"CPUs: server pinned to CPU {cpus['server']}, every client to CPU "
        f"{cpus['client']} (os.sched_setaffinity; the run may use CPUs "
        f"{available}). Other work on the machine still shares them."
    )


def fmt_interval(p: dict[str, Any]) -> str:
    if p["low"] is None:
        return "–"
    return f"[{p['low']:.4f}, {p['high']:.4f}]"


def fewer(saving: float) -> str:
    return f"{saving:.2%} fewer" if saving >= 0 else f"{-saving:.2%} more"


def render_instructions(ins: dict[str, Any] | None, meta: dict[str, Any]) -> list[str]:
    out = ["## Instructions of the client process", ""]
    if ins is None:
        return out + ["Not measured (--instr-rounds 0).", ""]
    trees = list(ins["trees"])
    out += [
        f"Per request: callgrind counts the client's instructions around its "
        f"{ins['requests']:,} measured GETs only (after {meta['instr_warmup']:,} "
        "warm-up requests, with instrumentation off for start-up and warm-up); "
        f"{meta['instr_rounds']} round(s), trees rotating, round r with "
        "PYTHONHASHSEED=r; figure = median over rounds, spread = (max - min) / "
        "median. The server, the same in every tree, is not counted.",
        "",
        "| tree | instructions per request | spread |",
        "|---|---:|---:|",
    ]
    for tree in trees:
        t = ins["trees"][tree]
        out.append(f"| {tree} | {t['per_request']:,.0f} | {t['spread']:.2%} |")
    out += [
        "",
        "Ratios paired by round (same seed, adjacent in time): geometric mean "
        "of the per-round ratios and its 95 % interval, computed as for the "
        "wall clock below.",
        "",
        "| ratio | geometric mean | 95 % interval | verdict | per-round range |",
        "|---|---:|---:|---|---:|",
    ]
    for pair, p in ins["paired"].items():
        out.append(
            f"| {pair} | {p['geomean']:.4f} | {fmt_interval(p)} | {p['verdict']} "
            f"| {min(p['ratios']):.4f}–{max(p['ratios']):.4f} |"
        )
    c = ins["claim"]
    others = [
        f"{tree}: {fewer(1 - ins['paired'][f'{tree}/pristine']['geomean'])}"
        for tree in trees
        if tree not in ("pristine", "patched")
    ]
    also = f" ({'; '.join(others)})" if others else ""
    out += [
        "",
        "The original report (aiohttp issue #9598) says that avoiding the connect "
        f"timeout saves ~{CLAIM:.1%} of the request time. On this workload the "
        f"patched client runs {fewer(c['saving'])} instructions per request than "
        f"pristine{also}: this workload **{c['verdict']}**.",
        "",
    ]
    return out


def render_wallclock(summary: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    s = summary["sides"]
    out = [
        "## Wall clock",
        "",
        f"{meta['rounds']} round(s), trees rotating; per tree the latencies of "
        "all rounds together and the median of the rounds' total times.",
        "",
        "| tree | median latency | p99 latency | total (median of rounds) |",
        "|---|---:|---:|---:|",
    ]
    for tree in s:
        out.append(
            f"| {tree} | {s[tree]['median_ms']:.3f} ms | "
            f"{s[tree]['p99_ms']:.3f} ms | {s[tree]['total_s']:.3f} s |"
        )
    out += [
        "",
        "Paired per round: each tree's figure over pristine's of the same round "
        "(below 1: faster). Geometric mean of the per-round ratios and its 95 % "
        "confidence interval, Student's t on the logs of the ratios with "
        "rounds - 1 degrees of freedom; where the interval spans 1.0 the "
        "difference is within the machine's noise.",
        "",
        "| ratio | figure | geometric mean | 95 % interval | verdict | "
        "per-round range |",
        "|---|---|---:|---:|---|---:|",
    ]
    for pair, metrics in summary["paired"].items():
        for m, what in METRICS.items():
            p = metrics[m]
            out.append(
                f"| {pair} | {what} | {p['geomean']:.4f} | {fmt_interval(p)} | "
                f"{p['verdict']} | {min(p['ratios']):.3f}–{max(p['ratios']):.3f} |"
            )
    return out + [""]


def render_load(
    summary: dict[str, Any], instructions: dict[str, Any] | None, meta: dict[str, Any]
) -> str:
    m = meta["machine"]
    out = [
        "# Keep-alive load reproduction",
        "",
        f"{meta['requests']:,} GETs (2,000-byte body) over one keep-alive "
        f"ClientSession (default timeout: no connect timeout) at concurrency "
        f"{meta['concurrency']}, uvloop, after {meta['warmup']:,} warm-up requests; "
        "server: aiohttp in its own process on 127.0.0.1 (pristine interpreter), "
        "the same for every tree.",
        "",
        f"- {cpu_line(meta['cpus'])}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['date']}; load average "
        f"(1, 5, 15 min) {meta['loadavg_start']} at the start, {m['loadavg']} at "
        "the end",
    ]
    for tree, i in meta.get("interpreters", {}).items():
        out.append(
            f"- {tree}: Python {i['python']}, aiohttp {i['aiohttp']} (C "
            f"extensions: {'yes' if i['c_extensions'] else 'NO'})"
        )
    out.append("")
    out += render_instructions(instructions, meta)
    out += render_wallclock(summary, meta)
    return "\n".join(out) + "\n![latency per request](load.png)\n"


def plot_load(
    runs: dict[str, list[dict[str, Any]]], meta: dict[str, Any], path: Path
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BenchError(f"no plot: {exc} (requirements/bench.txt)") from exc

    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for n, (tree, tree_runs) in enumerate(runs.items()):
        color = colors[n % len(colors)]
        total = statistics.median(run["total_s"] for run in tree_runs)
        for i, run in enumerate(tree_runs):
            lat_ms = [x * 1e3 for x in run["latencies_s"]]
            ax.plot(
                range(len(lat_ms)),
                lat_ms,
                ".",
                ms=1.5,
                alpha=0.25,
                color=color,
                label=f"{tree} (total {total:.2f} s, median of rounds)"
                if i == 0
                else None,
            )
            # the level, readable through the cloud: medians of 250 requests
            block = 250
            xs = range(block // 2, len(lat_ms), block)
            meds = [
                statistics.median(lat_ms[x - block // 2 : x + block // 2]) for x in xs
            ]
            ax.plot(list(xs), meds, "-", lw=1, color=color)
    ax.set_yscale("log")
    ax.set_xlabel("request index")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(
        f"{meta['requests']:,} keep-alive GETs, concurrency "
        f"{meta['concurrency']}, uvloop, {meta['rounds']} round(s) per tree"
    )
    ax.legend(
        loc="upper right", markerscale=8, title="dots: requests; lines: medians of 250"
    )
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

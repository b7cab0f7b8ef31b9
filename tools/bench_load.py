"""`python -m tools.bench load`: the keep-alive load reproduction.

One aiohttp server (the pristine interpreter) in its own process and, per
round, each tree's client (bench/load.py) sending the same keep-alive GETs;
the latencies summarized, rendered as load.md and plotted as load.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from tools.bench_report import SIDES, BenchError, ratio
from tools.bench_run import child_env, interpreter_info, machine_info
from tools.project import ROOT

LOAD_SCRIPT = ROOT / "bench" / "load.py"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize_load(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median and p99 latency over all rounds, total = median round time."""
    sides = {}
    for side in SIDES:
        lat = [x for run in runs[side] for x in run["latencies_s"]]
        sides[side] = {
            "median_ms": statistics.median(lat) * 1e3,
            "p99_ms": percentile(lat, 99) * 1e3,
            "total_s": statistics.median(run["total_s"] for run in runs[side]),
            "totals_s": [run["total_s"] for run in runs[side]],
        }
    ratios = {
        k: ratio(sides["patched"][k], sides["pristine"][k])
        for k in ("median_ms", "p99_ms", "total_s")
    }
    return {"sides": sides, "ratio_patched_pristine": ratios}


def render_load(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    s, r = summary["sides"], summary["ratio_patched_pristine"]
    out = [
        "# Keep-alive load reproduction",
        "",
        f"{meta['requests']:,} GETs (2,000-byte body) over one keep-alive "
        f"ClientSession at concurrency {meta['concurrency']}, uvloop, after "
        f"{meta['warmup']:,} warm-up requests; server: aiohttp in its own process "
        f"on 127.0.0.1 (pristine interpreter). Rounds: {meta['rounds']}, trees "
        "alternating.",
        f"Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, "
        f"{meta['machine']['date']}.",
        "",
        "| | median latency | p99 latency | total (median of rounds) |",
        "|---|---:|---:|---:|",
    ]
    for side in SIDES:
        out.append(
            f"| {side} | {s[side]['median_ms']:.3f} ms | "
            f"{s[side]['p99_ms']:.3f} ms | {s[side]['total_s']:.3f} s |"
        )
    out.append(
        f"| patched/pristine | {r['median_ms']:.4f} | {r['p99_ms']:.4f} | "
        f"{r['total_s']:.4f} |"
    )
    return "\n".join(out) + "\n\n![latency per request](load.png)\n"


def plot_load(
    runs: dict[str, list[dict[str, Any]]], meta: dict[str, Any], path: Path
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BenchError(f"no plot: {exc} (requirements/bench.txt)") from exc

    fig, ax = plt.subplots(figsize=(11, 5.5))
    for side, color in zip(SIDES, ("tab:blue", "tab:orange")):
        totals = ", ".join(f"{run['total_s']:.2f} s" for run in runs[side])
        for i, run in enumerate(runs[side]):
            lat_ms = [x * 1e3 for x in run["latencies_s"]]
            ax.plot(
                range(len(lat_ms)),
                lat_ms,
                ".",
                ms=1.5,
                alpha=0.35,
                color=color,
                label=f"{side} (total {totals})" if i == 0 else None,
            )
            # the level, readable through the cloud: medians of 250 requests
            block = 250
            xs = range(block // 2, len(lat_ms), block)
            meds = [
                statistics.median(lat_ms[x - block // 2 : x + block // 2]) for x in xs
            ]
            ax.plot(list(xs), meds, "-", lw=1.5, color=color)
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


def wait_for_port(port_file: Path, server: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if server.poll() is not None:
            raise BenchError(f"load server exited with {server.returncode}")
        time.sleep(0.1)
    raise BenchError("load server did not start within 30s")


def start_server(python: Path, work: Path, lifetime: float) -> subprocess.Popen[bytes]:
    cmd = [str(python), str(LOAD_SCRIPT), "serve", "--port-file", str(work / "port")]
    cmd += ["--lifetime", str(lifetime)]
    return subprocess.Popen(cmd, cwd=ROOT, env=child_env())


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run_client(
    args: argparse.Namespace, python: Path, url: str, out: Path, label: str, left: float
) -> dict[str, Any]:
    """One client run of args.requests GETs; its latencies and total time."""
    cmd = [str(python), str(LOAD_SCRIPT), "client", "--url", url, "--out", str(out)]
    cmd += ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    cmd += ["--warmup", str(args.warmup), "--label", label, "--timeout", str(left)]
    side = label.split()[0]
    try:
        subprocess.run(cmd, cwd=ROOT, env=child_env(), check=True, timeout=left + 10)
    except subprocess.CalledProcessError as exc:
        raise BenchError(f"load client ({side}) failed") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"load client ({side}) timed out") from exc
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def run_load(args: argparse.Namespace, pythons: dict[str, Path]) -> dict[str, Any]:
    """One server (pristine interpreter) and, per round, each tree's client."""
    for side in SIDES:
        interpreter_info(pythons[side])
    work = args.out / "load"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    deadline = time.monotonic() + args.max_seconds
    server = start_server(pythons["pristine"], work, args.max_seconds + 60)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SIDES}
    try:
        url = f"http://127.0.0.1:{wait_for_port(work / 'port', server)}/"
        for r in range(args.rounds):
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"load: over the {args.max_seconds:.0f}s budget")
                print(
                    f"load: round {r + 1}/{args.rounds}: {side}: {args.requests:,}"
                    f" GETs after {args.warmup:,} warm-up",
                    flush=True,
                )
                out = work / f"round{r + 1}-{side}.json"
                label = f"{side} round {r + 1}"
                runs[side].append(
                    run_client(args, pythons[side], url, out, label, left)
                )
    finally:
        stop_server(server)
    meta = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "machine": machine_info(),
    }
    result = {**meta, **summarize_load(runs)}
    (args.out / "load.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "load.md").write_text(render_load(result, meta))
    plot_load(runs, meta, args.out / "load.png")
    return result

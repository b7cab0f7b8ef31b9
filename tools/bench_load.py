"""`python -m tools.bench load`: the keep-alive load reproduction.

One aiohttp server (the pristine interpreter) in its own process and each
tree's client (bench/load.py): pristine, patched, 3.10.11 and any --tree.

- wall clock: per round, each tree's client sends the same keep-alive GETs,
  the trees' order rotating, so that the runs of one round are adjacent in
  time and a slow spell of the machine hits them all;
- instructions: per round, each tree's client under callgrind, counted
  around the measured requests only (bench/load.py --instructions), which
  the machine's load does not move.

The server and the clients run on different CPUs when the process may use
two. The summary, report and plot are tools/bench_load_report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tools.bench_load_report import (
    COUNTED,
    plot_load,
    render_load,
    summarize_instructions,
    summarize_load,
)
from tools.bench_report import BenchError, collect_parts
from tools.bench_run import child_env, interpreter_info, machine_info, run_logged
from tools.project import ROOT

LOAD_SCRIPT = ROOT / "bench" / "load.py"


def cpu_plan(available: set[int]) -> dict[str, Any]:
    """The server on one CPU, every client on another, when there are two."""
    cpus = sorted(available)
    if len(cpus) < 2:
        return {"available": cpus, "server": None, "client": None}
    return {"available": cpus, "server": cpus[0], "client": cpus[1]}


def wait_for_port(port_file: Path, server: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if server.poll() is not None:
            raise BenchError(f"load server exited with {server.returncode}")
        time.sleep(0.1)
    raise BenchError("load server did not start within 30s")


def start_server(
    python: Path, work: Path, lifetime: float, cpu: int | None
) -> subprocess.Popen[bytes]:
    cmd = [str(python), str(LOAD_SCRIPT), "serve", "--port-file", str(work / "port")]
    cmd += ["--lifetime", str(lifetime)]
    cmd += [] if cpu is None else ["--cpu", str(cpu)]
    return subprocess.Popen(cmd, cwd=ROOT, env=child_env())


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def client_cmd(
    python: Path,
    url: str,
    out: Path,
    label: str,
    left: float,
    *,
    requests: int,
    concurrency: int,
    warmup: int,
    cpu: int | None,
) -> list[str]:
    cmd = [str(python), str(LOAD_SCRIPT), "client", "--url", url, "--out", str(out)]
    cmd += ["--requests", str(requests), "--concurrency", str(concurrency)]
    cmd += ["--warmup", str(warmup), "--label", label, "--timeout", str(left)]
    return cmd + ([] if cpu is None else ["--cpu", str(cpu)])


def callgrind_cmd(client: list[str], dest: Path) -> list[str]:
    """client under callgrind, instrumentation off until it switches it on."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={dest}/callgrind.%p.out",
        *client,
        "--instructions",
    ]


def run_client(
    args: argparse.Namespace,
    python: Path,
    url: str,
    out: Path,
    label: str,
    left: float,
    cpu: int | None,
) -> dict[str, Any]:
    """One client run of args.requests GETs; its latencies and total time."""
    cmd = client_cmd(
        python,
        url,
        out,
        label,
        left,
        requests=args.requests,
        concurrency=args.concurrency,
        warmup=args.warmup,
        cpu=cpu,
    )
    side = label.split()[0]
    try:
        subprocess.run(cmd, cwd=ROOT, env=child_env(), check=True, timeout=left + 10)
    except subprocess.CalledProcessError as exc:
        raise BenchError(f"load client ({side}) failed") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"load client ({side}) timed out") from exc
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def count_client(
    args: argparse.Namespace,
    python: Path,
    url: str,
    dest: Path,
    seed: int,
    left: float,
    cpu: int | None,
) -> float:
    """The instructions of one client's measured requests, under callgrind."""
    dest.mkdir(parents=True)
    client = client_cmd(
        python,
        url,
        dest / "client.json",
        dest.name,
        left,
        requests=args.instr_requests,
        concurrency=args.concurrency,
        warmup=args.instr_warmup,
        cpu=cpu,
    )
    env = child_env(seed, CODSPEED_ENV="1", CODSPEED_PROFILE_FOLDER=str(dest))
    run_logged(callgrind_cmd(client, dest), env, dest / "run.log", timeout=left + 10)
    parts = collect_parts(dest)
    if COUNTED not in parts:
        raise BenchError(f"no instruction count in {dest}; see {dest / 'run.log'}")
    return float(parts[COUNTED][0])


def rotated(trees: list[str], r: int) -> list[str]:
    shift = r % len(trees)
    return trees[shift:] + trees[:shift]


def run_load(args: argparse.Namespace, pythons: dict[str, Path]) -> dict[str, Any]:
    """One server (pristine interpreter); per round each tree's client, then
    per instruction round each tree's client under callgrind."""
    interpreters = {tree: interpreter_info(python) for tree, python in pythons.items()}
    if args.instr_rounds:
        if not shutil.which("valgrind"):
            raise BenchError(
                "valgrind not found: apt-get install valgrind (make bench-load "
                "does, as root), or --instr-rounds 0"
            )
        for tree, info in interpreters.items():
            if not info["pytest_codspeed"]:
                raise BenchError(
                    f"{tree}: pytest-codspeed missing (requirements/bench.txt)"
                )
    loadavg_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cpus = cpu_plan(os.sched_getaffinity(0))
    work = args.out / "load"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    deadline = time.monotonic() + args.max_seconds

    def time_left() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"load: over the {args.max_seconds:.0f}s budget")
        return left

    trees = list(pythons)
    server = start_server(
        pythons["pristine"], work, args.max_seconds + 60, cpus["server"]
    )
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in trees}
    counts: dict[str, list[float]] = {t: [] for t in trees}
    try:
        url = f"http://127.0.0.1:{wait_for_port(work / 'port', server)}/"
        for r in range(args.rounds):
            for tree in rotated(trees, r):
                print(
                    f"load: round {r + 1}/{args.rounds}: {tree}: {args.requests:,}"
                    f" GETs after {args.warmup:,} warm-up",
                    flush=True,
                )
                out = work / f"round{r + 1}-{tree}.json"
                label = f"{tree} round {r + 1}"
                left = time_left()
                runs[tree].append(
                    run_client(
                        args, pythons[tree], url, out, label, left, cpus["client"]
                    )
                )
        for r in range(args.instr_rounds):
            for tree in rotated(trees, r):
                print(
                    f"load: instructions round {r + 1}/{args.instr_rounds}: {tree}: "
                    f"{args.instr_requests:,} GETs under callgrind ...",
                    end=" ",
                    flush=True,
                )
                start = time.monotonic()
                dest = work / f"instructions-round{r + 1}-{tree}"
                left = time_left()
                counts[tree].append(
                    count_client(
                        args, pythons[tree], url, dest, r, left, cpus["client"]
                    )
                )
                print(f"{time.monotonic() - start:.0f}s", flush=True)
    finally:
        stop_server(server)
    meta = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "instr_rounds": args.instr_rounds,
        "instr_requests": args.instr_requests,
        "instr_warmup": args.instr_warmup,
        "cpus": cpus,
        "loadavg_start": loadavg_start,
        "machine": machine_info(),
        "interpreters": interpreters,
    }
    summary = summarize_load(runs)
    instructions = (
        summarize_instructions(counts, args.instr_requests)
        if args.instr_rounds
        else None
    )
    result = {**meta, **summary, "instructions": instructions}
    (args.out / "load.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "load.md").write_text(render_load(summary, instructions, meta))
    plot_load(runs, meta, args.out / "load.png")
    return result

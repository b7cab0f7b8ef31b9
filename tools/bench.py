"""Benchmark pristine aiohttp, the patched build and aiohttp 3.10.11 in one run.

    python -m tools.bench [--mode instructions|walltime] [--rounds N]
                          [--tree NAME=PYTHON ...] [--no-upgrade]
    python -m tools.bench load [--requests 10000] [--concurrency 20]

Every tree's interpreter runs the same suite, bench/, from the repository
root: pristine 3.10.10 (--pristine), the series (--patched), and aiohttp
3.10.11 built from its sha256-pinned sdist into build/venvs/aiohttp-3.10.11
(the release a user could upgrade to instead; --no-upgrade leaves it out).
--tree adds any other interpreter, e.g. a build of an earlier series. The
targets compare patched with pristine only. The results land in --out
(build/bench):

  report.md, report.json    per benchmark: each tree, the ratios, the targets
                            met or missed, the machine
  annotate/                 callgrind_annotate of a) and b), both trees, and
                            the functions whose counts moved most
  load.md, load.json, load.png
                            the keep-alive load reproduction (bench/load.py)

instructions: pytest-codspeed's simulation mode under `valgrind
  --tool=callgrind --instr-atstart=no` with CODSPEED_ENV set: pytest-codspeed
  switches instrumentation on around each benchmarked call only and dumps one
  callgrind part per benchmark, named by its uri. The counts do not move with
  the machine's load, only (slightly) with timing-dependent code paths.
walltime: pytest-codspeed's local walltime runner, one benchmark per process,
  the two trees back to back, so that both see the machine in the same state.
The order of the trees rotates from run to run; each figure is the median
over the rounds (--rounds) of what one run measured. Round r runs with
PYTHONHASHSEED=r: the counts depend on where objects land in memory (e.g.
collisions in CPython's type attribute cache), which any change to the code
or the venv's path shifts; varying the seed samples that noise instead of
freezing one arbitrary layout, and the spread column shows its size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tools import matrix, sdist
from tools.cli import ToolError, reports_errors
from tools.envs import CONSTRAINTS, REQUIREMENTS, make_venv, pip

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("pristine", "patched")  # the two trees the targets compare
UPGRADE = "3.10.11"  # the release a user could pick instead of the series
UPGRADE_VENV = ROOT / "build" / "venvs" / f"aiohttp-{UPGRADE}"
# aiohttp's runtime dependencies and pytest, then the benchmark tooling
UPGRADE_REQUIREMENTS = (REQUIREMENTS / "behaviour.txt", REQUIREMENTS / "bench.txt")
DEFAULT_PYTHON = {
    "pristine": ROOT / "build" / "venvs" / "pristine" / "bin" / "python",
    "patched": ROOT / ".venv" / "bin" / "python",
}
SUITE = "bench/"
LOAD_SCRIPT = ROOT / "bench" / "load.py"
REQUESTS_PER_BATCH = 100  # bench/conftest.py REQUESTS: one measured call
# The suite's benchmarks in report order (test name -> what it measures).
BENCHMARKS = {
    "test_keepalive_default_timeout": "a) keep-alive, default timeout",
    "test_keepalive_connect_10": "b) keep-alive, connect=10 (> ceil_threshold)",
    "test_keepalive_connect_1": "c) keep-alive, connect=1 (< ceil_threshold)",
    "test_concurrent_limit_10": "d) 20 concurrent, limit=10 (wait branch)",
    "test_new_connection_per_request": "e) new connection per request (create)",
}
A, B, E = (
    "test_keepalive_default_timeout",
    "test_keepalive_connect_10",
    "test_new_connection_per_request",
)
ANNOTATED = (A, B)
UNITS = {
    "instructions": "instructions (Ir) per batch",
    "walltime": "time per batch (ns in report.json)",
}
WALLTIME_OPTIONS = ("--codspeed-warmup-time", "0.5", "--codspeed-max-time", "1.5")


class BenchError(ToolError):
    pass


@dataclass(frozen=True)
class Target:
    """figure(num) / figure(den) must lie within [low, high]."""

    text: str
    num: tuple[str, str]  # (side, benchmark)
    den: tuple[str, str]
    high: float
    low: float | None = None


TARGETS = (
    Target(
        "a) default timeout: patched <= 0.97 x pristine",
        ("patched", A),
        ("pristine", A),
        0.97,
    ),
    Target(
        "b) connect=10: patched <= 0.93 x pristine",
        ("patched", B),
        ("pristine", B),
        0.93,
    ),
    Target(
        "patched: connect=10 within 0.3 % of connect=None, the default (b vs a)",
        ("patched", B),
        ("patched", A),
        1.003,
        0.997,
    ),
    Target(
        "e) new connection per request: patched within +1 % of pristine",
        ("patched", E),
        ("pristine", E),
        1.01,
    ),
)


# --- report logic (pure; tested in tests/tools/test_bench_report.py) ---------


def ratio(num: float, den: float) -> float:
    if den <= 0:
        raise BenchError(f"cannot divide by a non-positive figure ({den})")
    return num / den


def evaluate(target: Target, figures: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The target's ratio and verdict; "not measured" if a figure is absent."""
    bound = f"<= {target.high:g}"
    if target.low is not None:
        bound = f"within [{target.low:g}, {target.high:g}]"
    result: dict[str, Any] = {"target": target.text, "bound": bound}
    try:
        num = figures[target.num[0]][target.num[1]]
        den = figures[target.den[0]][target.den[1]]
    except KeyError:
        return {**result, "ratio": None, "met": None, "verdict": "not measured"}
    r = ratio(num, den)
    met = r <= target.high and (target.low is None or r >= target.low)
    return {**result, "ratio": r, "met": met, "verdict": "met" if met else "MISSED"}


def target_line(result: dict[str, Any]) -> str:
    if result["ratio"] is None:
        return f"- **not measured**: {result['target']}"
    return (
        f"- **{result['verdict']}**: {result['target']}: ratio "
        f"{result['ratio']:.4f}, needs {result['bound']}"
    )


def ratio_names(trees: list[str]) -> list[str]:
    """The ratios a report shows: each tree over pristine, then patched over
    each tree other than the two (3.10.11, say)."""
    over_pristine = [f"{t}/pristine" for t in trees if t != "pristine"]
    return over_pristine + [f"patched/{t}" for t in trees if t not in SIDES]


def summarize(samples: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    """Per benchmark: median of each tree's samples, and the ratios.

    samples maps tree -> benchmark -> one figure per round; pristine and
    patched are always there. row["ratio"] is patched/pristine.
    """
    trees = list(samples)
    names = [n for n in BENCHMARKS if n in samples["pristine"]]
    names += sorted(set(samples["pristine"]) - set(names))
    rows = []
    for name in names:
        row: dict[str, Any] = {"name": name, "what": BENCHMARKS.get(name, name)}
        for tree in trees:
            if name not in samples[tree]:
                raise BenchError(f"{name}: measured on pristine but not on {tree}")
            values = samples[tree][name]
            med = statistics.median(values)
            row[tree] = med
            row[f"{tree}_spread"] = (max(values) - min(values)) / med
            row[f"{tree}_samples"] = values
        row["ratios"] = {}
        for pair in ratio_names(trees):
            num, den = pair.split("/")
            row["ratios"][pair] = ratio(row[num], row[den])
        row["ratio"] = row["ratios"]["patched/pristine"]
        rows.append(row)
    return rows


def parse_callgrind(path: Path) -> tuple[str | None, int]:
    """(the dump's trigger, its total Ir) of one callgrind output file."""
    trigger, events, total = None, ["Ir"], None
    with path.open(errors="replace") as f:
        for line in f:
            if line.startswith("desc: Trigger: "):
                trigger = line[len("desc: Trigger: ") :].strip()
            elif line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:"):
                total = int(line.split()[1 + events.index("Ir")])
    if total is None:
        raise BenchError(f"{path}: no totals line (truncated callgrind output?)")
    return trigger, total


CLIENT_REQUEST = "Client Request: "


def collect_parts(directory: Path) -> dict[str, tuple[int, Path]]:
    """Benchmark name -> (Ir, file) from pytest-codspeed's callgrind dumps.

    pytest-codspeed dumps each benchmark with CALLGRIND_DUMP_STATS_AT(uri);
    other parts (its metadata dump, the final dump at exit) are skipped.
    """
    parts: dict[str, tuple[int, Path]] = {}
    for path in sorted(directory.glob("callgrind.*")):
        trigger, total = parse_callgrind(path)
        if not trigger or not trigger.startswith(CLIENT_REQUEST):
            continue
        uri = trigger[len(CLIENT_REQUEST) :]
        if "::" not in uri:
            continue
        name = uri.rsplit("::", 1)[1]
        if name in parts:
            raise BenchError(f"{name}: dumped twice in {directory}")
        parts[name] = (total, path)
    return parts


def parse_walltime(results: list[Path]) -> dict[str, float]:
    """Benchmark name -> best (min) ns per call, from pytest-codspeed results.

    The best round, not the median: on a shared machine the other tenants
    only ever add time, and the median of a 1.5 s run moves with them.
    """
    figures = {}
    for path in results:
        for bench in json.loads(path.read_text()).get("benchmarks", []):
            figures[bench["name"]] = float(bench["stats"]["min_ns"])
    return figures


ANNOTATE_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)\s*$")


def parse_annotate(text: str) -> dict[str, int]:
    """Function -> exclusive Ir from callgrind_annotate output.

    Names lose their directory and object ("[/path/lib.so]"), so the same
    function compares across the two venvs.
    """
    costs: dict[str, int] = {}
    for line in text.splitlines():
        m = ANNOTATE_LINE.match(line)
        if not m or m.group(2) == "PROGRAM TOTALS":
            continue
        name = re.sub(r"\s+\[.*\]$", "", m.group(2))
        name = name.rsplit("/", 1)[-1]
        costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def delta_table(before: dict[str, int], after: dict[str, int], top: int) -> str:
    """The `top` functions whose counts moved most, largest change first."""
    names = set(before) | set(after)
    moves = [(after.get(n, 0) - before.get(n, 0), n) for n in names]
    moves.sort(key=lambda m: (-abs(m[0]), m[1]))
    lines = [f"{'pristine':>12} {'patched':>12} {'delta':>10}  function"]
    for d, n in moves[:top]:
        lines.append(f"{before.get(n, 0):>12,} {after.get(n, 0):>12,} {d:>+10,}  {n}")
    return "\n".join(lines) + "\n"


def fmt(value: float, mode: str) -> str:
    if mode == "instructions":
        return f"{value:,.0f}"
    return f"{value / 1e6:,.3f} ms"


def render_report(report: dict[str, Any]) -> str:
    mode, m = report["mode"], report["machine"]
    per_request = "instructions" if mode == "instructions" else "µs"
    scale = 1 if mode == "instructions" else 1e3
    out = [
        f"# Connect-timeout patch benchmarks: {mode}",
        "",
        f"- mode: **{mode}**, {report['method']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, "
        f"load average {m['loadavg']}",
        f"- valgrind: {m['valgrind']}; date: {m['date']}",
        f"- rounds: {report['rounds']}, trees rotating, round r with "
        "PYTHONHASHSEED=r; figure = median over rounds, spread = (max - min) / "
        "median",
    ]
    trees = list(report["interpreters"])
    for tree in trees:
        i = report["interpreters"][tree]
        out.append(
            f"- {tree}: Python {i['python']}, aiohttp {i['aiohttp']} (C extensions:"
            f" {'yes' if i['c_extensions'] else 'NO'}), pytest-codspeed "
            f"{i['pytest_codspeed']}, `{i['executable']}`"
        )
    pairs = ratio_names(trees)
    out += [
        "",
        f"Unit: {report['unit']} of {REQUESTS_PER_BATCH} GETs (client and the "
        "in-process server, whose share is the same code in every tree).",
        "",
        "| benchmark | "
        + " | ".join(trees + pairs)
        + f" | per request, pristine → patched ({per_request}) | spread "
        + " / ".join(trees)
        + " |",
        "|---|" + "---:|" * (len(trees) + len(pairs) + 2),
    ]
    for row in report["benchmarks"]:
        p, t = row["pristine"], row["patched"]
        cells = [fmt(row[tree], mode) for tree in trees]
        cells += [f"{row['ratios'][pair]:.4f}" for pair in pairs]
        cells.append(
            f"{p / REQUESTS_PER_BATCH / scale:,.1f} → "
            f"{t / REQUESTS_PER_BATCH / scale:,.1f}"
        )
        cells.append(" / ".join(f"{row[f'{tree}_spread']:.2%}" for tree in trees))
        out.append(f"| {row['what']} | " + " | ".join(cells) + " |")
    out += ["", "## Targets", ""]
    if mode != "instructions":
        out += [
            "The targets are set in instructions; walltime figures on this "
            "machine are only indicative.",
            "",
        ]
    else:
        out += [
            "The same build and seed repeat within ~0.05 %, but memory layout",
            "moves counts by up to ~0.3 % (the spread over seeds; also between",
            "two venvs of identical code): compare figures of one run only, and",
            "treat a ratio within ~0.2 % of its bound as undecided. The targets",
            "compare patched with pristine; the other trees only inform.",
            "",
        ]
    out += [target_line(t) for t in report["targets"]]
    missed = [t for t in report["targets"] if t["met"] is False]
    out += ["", f"{len(missed)} of {len(report['targets'])} targets missed."]
    if report.get("warnings"):
        out += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    return "\n".join(out) + "\n"


# --- running -----------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        valgrind = subprocess.run(
            ["valgrind", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        valgrind = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "valgrind": valgrind,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


INFO_SCRIPT = """\
import json, sys, aiohttp
from aiohttp import http_parser
try:
    from pytest_codspeed import __version__ as codspeed
except ImportError:
    codspeed = None
print(json.dumps({
    "python": sys.version.split()[0],
    "executable": sys.executable,
    "aiohttp": aiohttp.__version__,
    "aiohttp_file": aiohttp.__file__,
    "c_extensions": http_parser.HttpResponseParser.__module__ == "aiohttp._http_parser",
    "pytest_codspeed": codspeed,
}))
"""


def interpreter_info(python: Path) -> dict[str, Any]:
    """What the interpreter runs: Python, aiohttp, pytest-codspeed versions."""
    if not Path(python).exists():
        raise BenchError(f"{python}: no such interpreter (make venv venv-pristine)")
    proc = subprocess.run(
        [str(python), "-c", INFO_SCRIPT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )
    if proc.returncode:
        raise BenchError(f"{python}: cannot import aiohttp: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def child_env(seed: int = 0, **extra: str) -> dict[str, str]:
    """The environment without CodSpeed variables, plus `extra`.

    The hash seed fixes dict and set layouts, and with them where objects
    land in memory; see run_suite for why the rounds vary it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODSPEED_")}
    env["PYTHONHASHSEED"] = str(seed)
    env.pop("PYTHONPATH", None)  # aiohttp must come from the venv ...
    env.pop("AIOHTTP_NO_EXTENSIONS", None)  # ... with its C extensions
    return {**env, **extra}


def run_logged(cmd: list[str], env: dict[str, str], log: Path, timeout: float) -> None:
    with log.open("w") as f:
        try:
            proc = subprocess.run(
                cmd,
                env=env,
                cwd=ROOT,
                stdout=f,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"timed out after {timeout:.0f}s; see {log}") from exc
    if proc.returncode:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise BenchError(f"{' '.join(cmd[:4])} ... failed; see {log}:\n{tail}")


def pytest_cmd(python: Path, mode_args: list[str], tests: list[str]) -> list[str]:
    cmd = [str(python), "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"]
    return cmd + ["--codspeed", *mode_args]


Sample = dict[str, tuple[float, Path | None]]  # benchmark -> (figure, file)


def run_instructions(python: Path, dest: Path, tests: list[str], seed: int) -> Sample:
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={dest}/callgrind.%p.out",
        *pytest_cmd(python, ["--codspeed-mode", "simulation"], tests),
    ]
    env = child_env(seed, CODSPEED_ENV="1", CODSPEED_PROFILE_FOLDER=str(dest))
    run_logged(cmd, env, dest / "run.log", timeout=3600)
    parts = collect_parts(dest)
    if not parts:
        raise BenchError(f"no benchmark dumps in {dest}; see {dest / 'run.log'}")
    return {name: (float(ir), path) for name, (ir, path) in parts.items()}


def run_walltime(python: Path, dest: Path, tests: list[str], seed: int) -> Sample:
    cmd = pytest_cmd(python, ["--codspeed-mode", "walltime", *WALLTIME_OPTIONS], tests)
    env = child_env(seed, CODSPEED_PROFILE_FOLDER=str(dest))
    run_logged(cmd, env, dest / "run.log", timeout=1800)
    figures = parse_walltime(sorted((dest / "results").glob("*.json")))
    if not figures:
        raise BenchError(f"no walltime results in {dest}; see {dest / 'run.log'}")
    return {name: (ns, None) for name, ns in figures.items()}


RUNNERS: dict[str, Callable[[Path, Path, list[str], int], Sample]] = {
    "instructions": run_instructions,
    "walltime": run_walltime,
}


def collect_tests(python: Path, select: str | None) -> list[str]:
    """The suite's test ids (after -k), for running one benchmark at a time."""
    # --rootdir: ids relative to the repository, as the runs below need them
    cmd = [str(python), "-m", "pytest", SUITE, "--collect-only", "-q"]
    cmd += ["-p", "no:cacheprovider", f"--rootdir={ROOT}"]
    cmd += ["-k", select] if select else []
    proc = subprocess.run(
        cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    if proc.returncode or not ids:
        raise BenchError(f"collecting {SUITE} failed:\n{proc.stdout}{proc.stderr}")
    return ids


def annotate(
    files: dict[str, dict[str, list[Path | None]]],
    samples: dict[str, dict[str, list[float]]],
    dest: Path,
) -> None:
    """callgrind_annotate of a) and b), per tree, plus what moved between."""
    if not shutil.which("callgrind_annotate"):
        return
    dest.mkdir(parents=True, exist_ok=True)
    for name in ANNOTATED:
        costs = {}
        for side in SIDES:
            if name not in samples[side]:
                continue
            # the round closest to the median stands for the tree
            values, paths = samples[side][name], files[side][name]
            med = statistics.median(values)
            path = paths[min(range(len(values)), key=lambda i: abs(values[i] - med))]
            assert path is not None
            text = subprocess.run(
                ["callgrind_annotate", "--auto=no", "--threshold=100", str(path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            costs[side] = parse_annotate(text)
            lines = text.splitlines()
            (dest / f"{name}.{side}.txt").write_text("\n".join(lines[:80]) + "\n")
        if len(costs) == 2:
            head = (
                f"# {BENCHMARKS[name]}: exclusive Ir per function, one batch "
                f"of {REQUESTS_PER_BATCH} GETs, largest moves first\n"
            )
            table = delta_table(costs["pristine"], costs["patched"], top=40)
            (dest / f"{name}.delta.txt").write_text(head + table)


def ensure_upgrade_venv(venv: Path = UPGRADE_VENV, version: str = UPGRADE) -> Path:
    """A venv with the benchmarks' requirements and aiohttp `version` compiled
    from its sha256-pinned sdist (matrix.toml); remade when an input changes."""
    pins = {pin.version: pin for pin in matrix.load_pins()}
    if version not in pins:
        raise BenchError(
            f"aiohttp {version} is not pinned in {matrix.MATRIX_FILE}; add its "
            "sha256 there first."
        )
    pin = pins[version]
    inputs = upgrade_inputs(pin)
    stamp = venv / "bench-tree.sha256"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == inputs:
        return python
    archive = sdist.fetch(pin)  # verified before anything is built
    print(f"bench: building aiohttp {version} into {venv}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    make_venv(venv)
    args = [arg for req in UPGRADE_REQUIREMENTS for arg in ("-r", str(req))]
    pip(venv, "install", "--quiet", "-c", str(CONSTRAINTS), *args)
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        tree = Path(tmp) / "src"
        sdist.unpack(archive, tree)
        matrix.install_build(venv, tree, Path(tmp) / "wheel")
    stamp.write_text(inputs)
    return python


def upgrade_inputs(pin: sdist.Pin) -> str:
    """Identifies what the upgrade venv is made of: the sdist and the pins."""
    digest = hashlib.sha256(pin.sha256.encode())
    for path in [CONSTRAINTS, *UPGRADE_REQUIREMENTS]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_suite(args: argparse.Namespace, pythons: dict[str, Path]) -> dict[str, Any]:
    if args.mode == "instructions" and not shutil.which("valgrind"):
        raise BenchError("valgrind not found (apt-get install valgrind)")
    trees = list(pythons)
    interpreters = {tree: interpreter_info(pythons[tree]) for tree in trees}
    warnings = []
    if len({info["python"] for info in interpreters.values()}) > 1:
        warnings.append("the trees run different Python versions")
    for side, info in interpreters.items():
        if not info["c_extensions"]:
            warnings.append(f"{side}: aiohttp runs without its C extensions")
        if not info["pytest_codspeed"]:
            raise BenchError(
                f"{side}: pytest-codspeed missing (requirements/bench.txt)"
            )
    # Under valgrind the counts hardly depend on what runs around them: one
    # process per tree and round. Walltime does: run one benchmark at a time,
    # the trees back to back, so both see the machine in the same state.
    if args.mode == "instructions":
        units = [[SUITE] + (["-k", args.select] if args.select else [])]
    else:
        units = [[t] for t in collect_tests(pythons["pristine"], args.select)]
    work = args.out / args.mode
    shutil.rmtree(work, ignore_errors=True)
    samples: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
    files: dict[str, dict[str, list[Path | None]]] = {t: {} for t in trees}
    for r in range(args.rounds):
        for u, tests in enumerate(units):
            label = "suite" if len(units) == 1 else tests[0].rsplit("::", 1)[-1]
            shift = (r + u) % len(trees)
            for side in trees[shift:] + trees[:shift]:
                dest = work / f"round{r + 1}-{side}-{label}"
                dest.mkdir(parents=True)
                print(
                    f"bench: {args.mode} round {r + 1}/{args.rounds}: {label}: "
                    f"{side} ...",
                    end=" ",
                    flush=True,
                )
                start = time.monotonic()
                measured = RUNNERS[args.mode](pythons[side], dest, tests, r)
                for name, (value, path) in measured.items():
                    samples[side].setdefault(name, []).append(value)
                    files[side].setdefault(name, []).append(path)
                print(f"{time.monotonic() - start:.0f}s", flush=True)
    rows = summarize(samples)
    figures = {s: {row["name"]: row[s] for row in rows} for s in SIDES}
    report = {
        "mode": args.mode,
        "method": (
            "pytest-codspeed simulation mode under valgrind --tool=callgrind "
            "--instr-atstart=no (CODSPEED_ENV=1), instructions counted around "
            "the benchmarked call only"
            if args.mode == "instructions"
            else "pytest-codspeed local walltime runner, best (min) time of each run"
        ),
        "unit": UNITS[args.mode],
        "requests_per_batch": REQUESTS_PER_BATCH,
        "rounds": args.rounds,
        "machine": machine_info(),
        "interpreters": interpreters,
        "benchmarks": rows,
        "targets": [evaluate(t, figures) for t in TARGETS],
        "warnings": warnings,
    }
    if args.mode == "instructions":
        annotate(files, samples, args.out / "annotate")
    return report


# --- load ----------------------------------------------------------------------


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


def run_load(args: argparse.Namespace, pythons: dict[str, Path]) -> dict[str, Any]:
    """One server (pristine interpreter) and, per round, each tree's client."""
    for side in SIDES:
        interpreter_info(pythons[side])
    work = args.out / "load"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    deadline = time.monotonic() + args.max_seconds
    port_file = work / "port"
    server = subprocess.Popen(
        [
            str(pythons["pristine"]),
            str(LOAD_SCRIPT),
            "serve",
            "--port-file",
            str(port_file),
            "--lifetime",
            str(args.max_seconds + 60),
        ],
        cwd=ROOT,
        env=child_env(),
    )
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SIDES}
    try:
        url = f"http://127.0.0.1:{wait_for_port(port_file, server)}/"
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
                cmd = [
                    str(pythons[side]),
                    str(LOAD_SCRIPT),
                    "client",
                    "--url",
                    url,
                    "--out",
                    str(out),
                    "--requests",
                    str(args.requests),
                    "--concurrency",
                    str(args.concurrency),
                    "--warmup",
                    str(args.warmup),
                    "--label",
                    f"{side} round {r + 1}",
                    "--timeout",
                    str(left),
                ]
                try:
                    subprocess.run(
                        cmd, cwd=ROOT, env=child_env(), check=True, timeout=left + 10
                    )
                except subprocess.CalledProcessError as exc:
                    raise BenchError(f"load client ({side}) failed") from exc
                except subprocess.TimeoutExpired as exc:
                    raise BenchError(f"load client ({side}) timed out") from exc
                runs[side].append(json.loads(out.read_text()))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
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


# --- command line --------------------------------------------------------------


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("suite", "load"),
        default="suite",
        help="default: suite",
    )
    parser.add_argument("--pristine", type=Path, default=DEFAULT_PYTHON["pristine"])
    parser.add_argument("--patched", type=Path, default=DEFAULT_PYTHON["patched"])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--mode", choices=sorted(RUNNERS), default="instructions")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="suite: 5 (instructions and walltime); load: 2",
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="suite: measure this interpreter's aiohttp too",
    )
    parser.add_argument(
        "--no-upgrade",
        action="store_true",
        help=f"suite: leave aiohttp {UPGRADE} out",
    )
    parser.add_argument("-k", dest="select", help="suite: pytest -k expression")
    parser.add_argument("--requests", type=int, default=10_000, help="load")
    parser.add_argument("--concurrency", type=int, default=20, help="load")
    parser.add_argument("--warmup", type=int, default=1_000, help="load")
    parser.add_argument(
        "--max-seconds", type=float, default=900.0, help="load: the whole run's budget"
    )
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = {"load": 2, "instructions": 5, "walltime": 5}[
            "load" if args.command == "load" else args.mode
        ]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    pythons = {"pristine": args.pristine.absolute(), "patched": args.patched.absolute()}
    if args.command == "suite":
        if not args.no_upgrade:
            pythons[UPGRADE] = ensure_upgrade_venv()
        for spec in args.tree:
            name, _, python = spec.partition("=")
            if not name or not python or name in pythons or "/" in name:
                parser.error(f"--tree {spec!r}: want NEW_NAME=PYTHON")
            pythons[name] = Path(python).absolute()
    args.out = args.out.absolute()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.command == "load":
        run_load(args, pythons)
        print((args.out / "load.md").read_text())
    else:
        report = run_suite(args, pythons)
        (args.out / "report.json").write_text(
            json.dumps(report, indent=1, default=str) + "\n"
        )
        (args.out / "report.md").write_text(render_report(report))
        print(render_report(report))
    print(f"bench: done in {time.monotonic() - started:.0f}s; see {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The runners of `python -m tools.bench`: each tree's interpreter, under
callgrind (instructions) or pytest-codspeed's walltime runner, round by round.

Also builds the venv of aiohttp 3.10.11 (the release a user could upgrade to
instead of the series) from its sha256-pinned sdist, and writes the
callgrind_annotate listings of a) and b).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tools import sdist
from tools.bench_report import (
    ANNOTATED,
    BENCHMARKS,
    REQUESTS_PER_BATCH,
    SIDES,
    TARGETS,
    UNITS,
    BenchError,
    collect_parts,
    delta_table,
    evaluate,
    parse_annotate,
    parse_walltime,
    summarize,
)
from tools.builds import install_build
from tools.measurements import machine
from tools.project import (
    BUILD,
    CONSTRAINTS,
    REQUIREMENTS,
    ROOT,
    VENVS,
    Pin,
    clean_env,
    files_digest,
    make_venv,
    matrix_pins,
    pip,
    read_stamp,
    venv_python,
    write_stamp,
)

UPGRADE = "3.10.11"  # the release a user could pick instead of the series
UPGRADE_VENV = BUILD / "venvs" / f"aiohttp-{UPGRADE}"
# aiohttp's runtime dependencies and pytest, then the benchmark tooling
UPGRADE_REQUIREMENTS = (REQUIREMENTS / "behaviour.txt", REQUIREMENTS / "bench.txt")
DEFAULT_PYTHON = {side: venv_python(VENVS[side]) for side in SIDES}
SUITE = "bench/"
WALLTIME_OPTIONS = ("--codspeed-warmup-time", "0.5", "--codspeed-max-time", "1.5")


def machine_info() -> dict[str, Any]:
    """measurements.machine() plus valgrind, the date and the load average."""
    try:
        valgrind = subprocess.run(
            ["valgrind", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        valgrind = "not installed"
    return {
        **machine(),
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
    """project.clean_env (aiohttp from the venv, with its C extensions, and no
    CodSpeed hooks of an outer run) with the hash seed, plus `extra`.

    The hash seed fixes dict and set layouts, and with them where objects
    land in memory; see run_suite for why the rounds vary it.
    """
    return clean_env({"PYTHONHASHSEED": str(seed), **extra})


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


def upgrade_inputs(pin: Pin) -> str:
    """Identifies what the upgrade venv is made of: the sdist and the pins."""
    return files_digest(CONSTRAINTS, *UPGRADE_REQUIREMENTS, extra=pin.sha256)


def ensure_upgrade_venv(
    venv: Path = UPGRADE_VENV,
    version: str = UPGRADE,
    pinned: Iterable[Pin] | None = None,
) -> Path:
    """A venv with the benchmarks' requirements and aiohttp `version` compiled
    from its sha256-pinned sdist (matrix.toml, or `pinned`); remade when an
    input changes."""
    pins = {pin.version: pin for pin in (matrix_pins() if pinned is None else pinned)}
    if version not in pins:
        raise BenchError(
            f"aiohttp {version} is not pinned in matrix.toml; add its "
            "sha256 there first."
        )
    pin = pins[version]
    inputs = upgrade_inputs(pin)
    python = venv_python(venv)
    if python.exists() and read_stamp(venv).get("bench-inputs") == inputs:
        return python
    archive = sdist.fetch(pin)  # verified before anything is built
    print(f"bench: building aiohttp {version} into {venv}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    make_venv(venv)
    args = [arg for req in UPGRADE_REQUIREMENTS for arg in ("-r", str(req))]
    pip(venv, "install", "--quiet", "-c", str(CONSTRAINTS), *args)
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
        tree = Path(tmp) / "src"
        sdist.unpack(archive, tree)
        install_build(venv, tree, Path(tmp) / "wheel")
    write_stamp(venv, **{"bench-inputs": inputs})
    return python


def check_interpreters(pythons: dict[str, Path]) -> tuple[dict[str, Any], list[str]]:
    """Each tree's interpreter info, and warnings on what would skew a comparison."""
    interpreters = {tree: interpreter_info(python) for tree, python in pythons.items()}
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
    return interpreters, warnings


Samples = dict[str, dict[str, list[float]]]  # tree -> benchmark -> per round
Files = dict[str, dict[str, list[Path | None]]]


def measure(
    args: argparse.Namespace, pythons: dict[str, Path], units: list[list[str]]
) -> tuple[Samples, Files]:
    """Every unit on every tree, round by round, the trees' order rotating."""
    trees = list(pythons)
    work = args.out / args.mode
    shutil.rmtree(work, ignore_errors=True)
    samples: Samples = {t: {} for t in trees}
    files: Files = {t: {} for t in trees}
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
    return samples, files


METHODS = {
    "instructions": "pytest-codspeed simulation mode under valgrind --tool=callgrind "
    "--instr-atstart=no (CODSPEED_ENV=1), instructions counted around "
    "the benchmarked call only",
    "walltime": "pytest-codspeed local walltime runner, best (min) time of each run",
}


def run_suite(args: argparse.Namespace, pythons: dict[str, Path]) -> dict[str, Any]:
    if args.mode == "instructions" and not shutil.which("valgrind"):
        raise BenchError("valgrind not found (apt-get install valgrind)")
    interpreters, warnings = check_interpreters(pythons)
    # Under valgrind the counts hardly depend on what runs around them: one
    # process per tree and round. Walltime does: run one benchmark at a time,
    # the trees back to back, so both see the machine in the same state.
    if args.mode == "instructions":
        units = [[SUITE] + (["-k", args.select] if args.select else [])]
    else:
        units = [[t] for t in collect_tests(pythons["pristine"], args.select)]
    samples, files = measure(args, pythons, units)
    rows = summarize(samples)
    figures = {s: {row["name"]: row[s] for row in rows} for s in SIDES}
    report = {
        "mode": args.mode,
        "method": METHODS[args.mode],
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

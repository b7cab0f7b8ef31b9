"""Benchmark pristine aiohttp, the patched build and aiohttp 3.10.11 in one run.

    python -m tools.bench [--mode instructions|walltime] [--rounds N]
                          [--tree NAME=PYTHON ...] [--no-upgrade]
    python -m tools.bench load [--rounds 10] [--requests 10000] [--concurrency 20]
                               [--instr-rounds 5] [--instr-requests 1000]
    (either with --no-record: leave docs/measurements.md as it is)

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
                            the keep-alive load reproduction (bench/load.py):
                            wall-clock rounds with paired ratios and their
                            95 % intervals, and the client's instructions per
                            request under callgrind (tools/bench_load.py)

and report.md (or load.md, with load.png) becomes a section of
docs/measurements.md (tools/measurements.py), unless --no-record.
The report is tools/bench_report.py, the runners tools/bench_run.py, the
load reproduction tools/bench_load.py; this module is their command line.

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
import json
import shutil
import sys
import time
from pathlib import Path

from tools import project
from tools.bench_load import run_load
from tools.bench_report import render_report
from tools.bench_run import (
    DEFAULT_PYTHON,
    RUNNERS,
    UPGRADE,
    ensure_upgrade_venv,
    run_suite,
)
from tools.cli import reports_errors
from tools.measurements import invocation, record
from tools.project import BUILD

TITLES = {
    "instructions": "Benchmarks: instructions (make bench)",
    "walltime": "Benchmarks: walltime (make bench MODE=walltime)",
}


def record_load(text: str, plot: Path, command: str) -> None:
    """load.md as the bench-load section; its plot beside the document."""
    if plot.exists():  # beside the document, which links it as load.png
        docs = project.MEASUREMENTS.parent
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot, docs / "load.png")
    record("bench-load", text, command, "Keep-alive load (make bench-load)")


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="leave docs/measurements.md alone (tests, dry runs)",
    )
    parser.add_argument("--pristine", type=Path, default=DEFAULT_PYTHON["pristine"])
    parser.add_argument("--patched", type=Path, default=DEFAULT_PYTHON["patched"])
    parser.add_argument("--out", type=Path, default=BUILD / "bench")
    parser.add_argument("--mode", choices=sorted(RUNNERS), default="instructions")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="suite: 5 (instructions and walltime); load: 10 wall-clock rounds",
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="measure this interpreter's aiohttp too",
    )
    parser.add_argument(
        "--no-upgrade",
        action="store_true",
        help=f"leave aiohttp {UPGRADE} out",
    )
    parser.add_argument("-k", dest="select", help="suite: pytest -k expression")
    parser.add_argument("--requests", type=int, default=10_000, help="load")
    parser.add_argument("--concurrency", type=int, default=20, help="load")
    parser.add_argument("--warmup", type=int, default=1_000, help="load")
    parser.add_argument(
        "--instr-rounds",
        type=int,
        default=5,
        help="load: rounds of each client under callgrind (0: none)",
    )
    parser.add_argument(
        "--instr-requests",
        type=int,
        default=1_000,
        help="load: requests counted per callgrind run",
    )
    parser.add_argument(
        "--instr-warmup",
        type=int,
        default=200,
        help="load: warm-up per callgrind run (at least --concurrency, so that "
        "no connection is opened while counting)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1800.0,
        help="load: the whole run's budget",
    )
    return parser


def trees(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Path]:
    """Tree name -> interpreter: pristine, patched, 3.10.11 and any --tree."""
    pythons = {"pristine": args.pristine.absolute(), "patched": args.patched.absolute()}
    if not args.no_upgrade:
        pythons[UPGRADE] = ensure_upgrade_venv()
    for spec in args.tree:
        name, _, python = spec.partition("=")
        if not name or not python or name in pythons or "/" in name:
            parser.error(f"--tree {spec!r}: want NEW_NAME=PYTHON")
        pythons[name] = Path(python).absolute()
    return pythons


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(raw)
    if args.rounds is None:
        args.rounds = {"load": 10, "instructions": 5, "walltime": 5}[
            "load" if args.command == "load" else args.mode
        ]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.instr_rounds < 0 or args.instr_requests < 1:
        parser.error("--instr-rounds must be at least 0, --instr-requests 1")
    if args.instr_warmup < args.concurrency:
        parser.error("--instr-warmup must be at least --concurrency")
    pythons = trees(args, parser)
    args.out = args.out.absolute()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    command = invocation("tools.bench", raw)
    if args.command == "load":
        run_load(args, pythons)
        text = (args.out / "load.md").read_text()
        if not args.no_record:
            record_load(text, args.out / "load.png", command)
    else:
        report = run_suite(args, pythons)
        (args.out / "report.json").write_text(
            json.dumps(report, indent=1, default=str) + "\n"
        )
        text = render_report(report)
        (args.out / "report.md").write_text(text)
        if not args.no_record:
            record(f"bench-{args.mode}", text, command, TITLES[args.mode])
    print(text)
    print(f"bench: done in {time.monotonic() - started:.0f}s; see {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

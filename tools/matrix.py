"""The series against other aiohttp releases: does it apply, does it work?

    python -m tools.matrix [--versions 3.10.9,3.10.10] [--no-tests]
                           [--patches DIR]

For each release pinned in upstream.toml (the main pin) and matrix.toml:
verify the sdist's sha256 (downloaded once into build/cache/), say whether
the change is already upstream, else apply the series to a fresh unpack
(zero fuzz first, then with fuzz) and run tests/patch against that patched
build, compiled with its C extensions in build/matrix/venv.

The report also says which patches to drop at which release: those the
release, unpatched, already has by measurement: it passes every behaviour
test that proves the patch (`make races`, build/races/races.json). A
release `make races` has not measured gets no advice. Each patch's DEP-3
Applied-Upstream field is shown beside it, and flagged where the
measurement disagrees.

Writes build/matrix/matrix.md and build/matrix/matrix.json. Exit status 1
when an sdist fails its pin, or the main pin does not apply or fails its
tests; the other releases only inform.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools import dep3, race_results, sdist
from tools.builds import (
    PIN_ONLY_TESTS,
    build_key,
    install_build,
    requirements_venv,
    run_behaviour_tests,
)
from tools.cli import ToolError, picked, reports_errors
from tools.junit import TestResult, read_junit
from tools.matrix_report import (
    FUZZ,
    NO,
    OFFSETS,
    REFUSED,
    UPSTREAM,
    ZERO_FUZZ,
    PatchHunk,
    Row,
    write_reports,
)
from tools.measurements import invocation, record
from tools.patches import Patch, PatchDoesNotApply, apply_patch, read_patch, read_series
from tools.project import (
    BUILD,
    CACHE_DIR,
    CONSTRAINTS,
    PATCHES,
    REQUIREMENTS,
    Pin,
    load_pin,
    matrix_pins,
)

OUT = BUILD / "matrix"
BEHAVIOUR = REQUIREMENTS / "behaviour.txt"
TEST_TIMEOUT = 600  # seconds; a lost connect timeout can make a test hang


class MatrixError(ToolError):
    """A problem with matrix.toml or the arguments; the message says what."""


# ---------------------------------------------------------------- pins


def select(pins: list[Pin], versions: str | None) -> list[Pin]:
    chosen, unknown = picked(versions, {p.version: p for p in pins})
    if unknown:
        raise MatrixError(
            f"not pinned: {', '.join(unknown)}. "
            f"Pinned: {', '.join(p.version for p in pins)}. "
            "Add a release's sha256 to matrix.toml first."
        )
    return chosen


# ---------------------------------------------------------------- upstream


@dataclass(frozen=True)
class Upstream:
    """Where a release's source applies the connect timeout."""

    session_wraps: bool  # ClientSession._request: ceil_timeout around connect()
    connector_times: bool  # BaseConnector.connect enters ceil_timeout itself

    @property
    def moved(self) -> bool:
        return not self.session_wraps and self.connector_times


def _method(module: ast.Module, cls: str, name: str) -> ast.AST | None:
    for node in module.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if item.name == name:
                        return item
    return None


def _is_ceil_timeout(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name == "ceil_timeout"


def _timeout_blocks(node: ast.AST) -> Iterator[ast.AsyncWith]:
    for child in ast.walk(node):
        if isinstance(child, ast.AsyncWith) and any(
            _is_ceil_timeout(item.context_expr) for item in child.items
        ):
            yield child


def _calls_connector_connect(node: ast.AST) -> bool:
    """Does node call ``<...>._connector.connect(...)``?"""
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
            owner = child.func.value
            if child.func.attr == "connect" and getattr(owner, "attr", "") == (
                "_connector"
            ):
                return True
    return False


def detect(tree: Path) -> Upstream:
    """Read aiohttp/client.py and connector.py of a source tree (never run)."""
    package = tree / "aiohttp"
    client = ast.parse((package / "client.py").read_text(encoding="utf-8"))
    connector = ast.parse((package / "connector.py").read_text(encoding="utf-8"))
    request = _method(client, "ClientSession", "_request")
    connect = _method(connector, "BaseConnector", "connect")
    wraps = request is not None and any(
        _calls_connector_connect(block) for block in _timeout_blocks(request)
    )
    times = connect is not None and any(True for _ in _timeout_blocks(connect))
    return Upstream(session_wraps=wraps, connector_times=times)


# ---------------------------------------------------------------- applying


@dataclass
class Applied:
    status: str  # ZERO_FUZZ, OFFSETS, FUZZ or NO
    hunks: list[PatchHunk]  # moved or fuzzed hunks; for NO, those that failed
    errors: list[str] = field(default_factory=list)  # for NO, when no hunk is named

    @property
    def notes(self) -> list[str]:
        return [h.note() for h in self.hunks] + self.errors


def _apply_all(
    pristine: Path, dest: Path, patches: list[Patch], *, allow_fuzz: bool
) -> list[PatchHunk]:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(pristine, dest, symlinks=True)
    moved = []
    for patch in patches:
        report = apply_patch(dest, patch, patch.name, allow_fuzz=allow_fuzz)
        moved += [PatchHunk(patch.name, h) for h in report.moved]
    return moved


def _failed(exc: ToolError) -> Applied:
    """The failed hunks, or the first line of any other queue error."""
    if isinstance(exc, PatchDoesNotApply):
        if exc.hunks:
            return Applied(NO, [PatchHunk(exc.where, h) for h in exc.hunks])
        return Applied(NO, [], [f"{exc.where}: {line}" for line in exc.reasons()])
    return Applied(NO, [], str(exc).splitlines()[:1])


def apply_series(pristine: Path, dest: Path, patches: list[Patch]) -> Applied:
    """Apply to a copy of pristine in dest: zero fuzz if it can, else fuzz."""
    try:
        moved = _apply_all(pristine, dest, patches, allow_fuzz=False)
        return Applied(OFFSETS if moved else ZERO_FUZZ, moved)
    except ToolError:
        pass  # GNU patch may have changed part of dest: start again
    try:
        moved = _apply_all(pristine, dest, patches, allow_fuzz=True)
    except ToolError as exc:
        return _failed(exc)
    return Applied(FUZZ, moved)


# ---------------------------------------------------------------- testing


def run_tests(venv: Path, deselect: tuple[str, ...], log_dir: Path) -> TestResult:
    junit = log_dir / "junit.xml"
    junit.unlink(missing_ok=True)
    args = [f"--junitxml={junit}"]
    for test in deselect:
        args += ["--deselect", test]
    log = log_dir / "pytest.log"
    if not run_behaviour_tests(venv, args, log, TEST_TIMEOUT):
        return TestResult(0, 0, 0, note=f"timed out after {TEST_TIMEOUT} s")
    if not junit.exists():
        return TestResult(0, 0, 0, note=f"pytest did not run; see {log}")
    return read_junit(junit)


# ---------------------------------------------------------------- matrix


@dataclass
class Options:
    patches: list[Patch]
    out: Path = OUT
    cache_dir: Path = CACHE_DIR
    tests: bool = True
    main_version: str = ""
    measured: dict[str, Any] = field(default_factory=dict)  # races.json


def check_version(pin: Pin, opts: Options, say: Callable[[str], None]) -> Row:
    row = Row(pin.version, "verified", REFUSED, main=pin.version == opts.main_version)
    row.drop = drops(opts.patches, pin.version, opts.measured)
    say("fetching")
    try:
        archive = sdist.fetch(pin, opts.cache_dir)
    except sdist.SdistError as exc:
        present = (opts.cache_dir / pin.sdist).exists()
        row.sha256 = "MISMATCH" if present else "not available"
        row.details = [str(exc).splitlines()[0]]
        return row
    work = opts.out / "work" / pin.version
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        say("unpacking")
        pristine = work / "pristine"
        sdist.unpack(archive, pristine)
        upstream = detect(pristine)
        if upstream.moved:
            row.applies = UPSTREAM
            row.details = [
                "ClientSession._request no longer wraps connect() in "
                "ceil_timeout; BaseConnector.connect applies it"
            ]
            return row
        say("applying")
        applied = apply_series(pristine, work / "patched", opts.patches)
        row.applies, row.hunks, row.details = (
            applied.status,
            applied.hunks,
            applied.errors,
        )
        if applied.status == NO or not opts.tests:
            return row
        venv = opts.out / "venv"
        requirements_venv(venv, BEHAVIOUR, CONSTRAINTS)
        wheel_dir = (
            opts.out / "wheels" / f"{pin.version}-{build_key(pin, opts.patches)}"
        )
        cached = any(wheel_dir.glob("*.whl"))
        say("installing the cached build" if cached else "compiling")
        install_build(venv, work / "patched", wheel_dir)
        say("testing")
        logs = opts.out / "logs" / pin.version
        logs.mkdir(parents=True, exist_ok=True)
        deselect = () if row.main else PIN_ONLY_TESTS
        result = run_tests(venv, deselect, logs)
        row.test_result = result
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)  # unpacked trees are large


class Progress:
    def __init__(self, index: int, total: int, version: str) -> None:
        self.prefix = f"[{index}/{total}] aiohttp {version}:"

    def __call__(self, step: str) -> None:
        print(f"{self.prefix} {step}…", flush=True)


def run(pins: list[Pin], opts: Options) -> list[Row]:
    rows = []
    for i, pin in enumerate(pins, 1):
        say = Progress(i, len(pins), pin.version)
        start = time.monotonic()
        row = check_version(pin, opts, say)
        print(
            f"{say.prefix} {row.applies}; tests: {row.tests} "
            f"({time.monotonic() - start:.0f} s)",
            flush=True,
        )
        rows.append(row)
    return rows


def drops(
    patches: list[Patch], version: str, measured: dict[str, Any]
) -> list[str] | None:
    """The patches that version, unpatched, has by the race results (every
    test proving them passes there); None where it was not measured."""
    has = race_results.release_has(measured, version)
    if has is None:
        return None
    return [p.name for p in patches if race_results.patch_number(p.name) in has]


def applied_upstream(patches: list[Patch]) -> dict[str, dep3.AppliedUpstream]:
    return {
        p.name: found for p in patches if (found := dep3.applied_upstream(p.message))
    }


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.matrix",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--versions", help="comma-separated (default: all pinned)")
    parser.add_argument(
        "--no-tests", action="store_true", help="only apply: no build, no tests"
    )
    parser.add_argument(
        "--patches",
        type=Path,
        default=PATCHES,
        help="the series directory (default: patches/)",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not write the report into docs/measurements.md",
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    main_pin = load_pin()
    pins = select(matrix_pins(main=main_pin), args.versions)
    entries = read_series(args.patches)
    patches = [read_patch(e) for e in entries]
    opts = Options(
        patches,
        tests=not args.no_tests,
        main_version=main_pin.version,
        measured=race_results.load_results(),
    )
    rows = run(pins, opts)
    write_reports(rows, [e.name for e in entries], OUT, applied_upstream(patches))
    print(
        f"wrote {OUT / 'matrix.md'} and matrix.json ({time.monotonic() - start:.0f} s)"
    )
    report = (OUT / "matrix.md").read_text()
    print(report)
    if not args.no_tests and not args.no_record:
        record(
            "matrix",
            report,
            invocation("tools.matrix", argv),
            title="The series against aiohttp releases (make matrix)",
        )
    bad = [r for r in rows if r.sha256 != "verified" or (r.main and not r.ok)]
    for row in bad:
        print(
            f"error: aiohttp {row.version}: sha256 {row.sha256}, applies "
            f"{row.applies}, tests {row.tests}",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

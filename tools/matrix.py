"""The series against other aiohttp releases: does it apply, does it work?

    python -m tools.matrix [--versions 3.10.9,3.10.10] [--no-tests]
                           [--patches DIR]

For each release pinned in upstream.toml (the main pin) and matrix.toml:
verify the sdist's sha256 (downloaded once into build/cache/), say whether
the change is already upstream, else apply the series to a fresh unpack
(zero fuzz first, then with fuzz) and run tests/patch against that patched
build, compiled with its C extensions in build/matrix/venv.

The report also says which patches to drop at which release: those whose
DEP-3 Applied-Upstream field names that release or an older one.

Writes build/matrix/matrix.md and build/matrix/matrix.json. Exit status 1
when an sdist fails its pin, or the main pin does not apply or fails its
tests; the other releases only inform.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools import dep3, sdist
from tools.cli import ToolError, reports_errors
from tools.compat import tomllib
from tools.dep3 import version_key
from tools.envs import CONSTRAINTS, REQUIREMENTS, make_venv, pip
from tools.junit import TestResult, read_junit
from tools.patchq import (
    Patch,
    PatchDoesNotApply,
    QueueError,
    apply_patch,
    read_patch,
    read_series,
)

ROOT = sdist.ROOT
MATRIX_FILE = ROOT / "matrix.toml"
OUT = ROOT / "build" / "matrix"
BEHAVIOUR = REQUIREMENTS / "behaviour.txt"
TESTS = "tests/patch"
TEST_TIMEOUT = 600  # seconds; a lost connect timeout can make a test hang
# Checks the version number, so it can only pass on the main pin.
PIN_ONLY_TESTS = ("tests/patch/test_build.py::test_version_is_the_pinned_release",)

ZERO_FUZZ, OFFSETS, FUZZ, NO = "zero fuzz", "offsets", "fuzz", "no"
UPSTREAM, REFUSED = "already upstream", "n/a"


class MatrixError(ToolError):
    """A problem with matrix.toml or the arguments; the message says what."""


# ---------------------------------------------------------------- pins


def load_pins(
    path: Path = MATRIX_FILE, main: sdist.Pin | None = None
) -> list[sdist.Pin]:
    """The main pin plus matrix.toml's, oldest release first."""
    main = main or sdist.load_pin()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))["sdists"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise MatrixError(
            f"{path}: cannot read the pins ({exc!r}); it needs an [sdists] "
            'table of "version" = "sha256" lines'
        ) from exc
    pins = {main.version: main}
    for version, sha in table.items():
        if version == main.version:
            if sha != main.sha256:
                raise MatrixError(
                    f"{path}: pins {version} to {sha}, but upstream.toml pins "
                    f"{main.sha256}; remove the line (upstream.toml holds it)."
                )
            continue
        name = f"{main.name}-{version}.tar.gz"
        pins[version] = sdist.Pin(main.name, version, name, sha)
    return sorted(pins.values(), key=lambda p: version_key(p.version))


def select(pins: list[sdist.Pin], versions: str | None) -> list[sdist.Pin]:
    if not versions:
        return pins
    wanted = [v.strip() for v in versions.split(",") if v.strip()]
    known = {p.version: p for p in pins}
    unknown = [v for v in wanted if v not in known]
    if unknown:
        raise MatrixError(
            f"not pinned: {', '.join(unknown)}. Pinned: {', '.join(known)}. "
            "Add a release's sha256 to matrix.toml first."
        )
    return [p for p in pins if p.version in wanted]


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
    notes: list[str]  # moved or fuzzed hunks; for NO, the hunks that failed


def _apply_all(
    pristine: Path, dest: Path, patches: list[Patch], *, allow_fuzz: bool
) -> list[str]:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(pristine, dest, symlinks=True)
    notes = []
    for patch in patches:
        report = apply_patch(dest, patch, patch.name, allow_fuzz=allow_fuzz)
        notes += [f"{patch.name}: {_tidy(o)}" for o in report.offsets]
    return notes


# patchq's "hunk #2 of f (@@ -656,13 +655,9 @@ ctx): (offset -2 lines)."
HUNK_NOTE = re.compile(
    r"^hunk #(\d+) of (.+?) \(@@ -(\d+)\S* \+\S+ @@.*?\):?\s*"
    r"((?:with fuzz|\(offset|does not apply).*?)\.?$"
)


def _tidy(note: str) -> str:
    """Shorter: "f hunk #2 (line 656): (offset -2 lines)"."""
    if m := HUNK_NOTE.match(note):
        what = m[4][1:-1] if m[4].startswith("(") else m[4]
        return f"{m[2]} hunk #{m[1]} (line {m[3]}): {what}"
    return note


def _failures(exc: QueueError) -> list[str]:
    """The failed hunks, or the whole message for any other queue error."""
    if isinstance(exc, PatchDoesNotApply):
        return [f"{exc.where}: {_tidy(f)}" for f in exc.failures]
    return str(exc).splitlines()[:1]


def apply_series(pristine: Path, dest: Path, patches: list[Patch]) -> Applied:
    """Apply to a copy of pristine in dest: zero fuzz if it can, else fuzz."""
    try:
        notes = _apply_all(pristine, dest, patches, allow_fuzz=False)
        return Applied(OFFSETS if notes else ZERO_FUZZ, notes)
    except QueueError:
        pass  # GNU patch may have changed part of dest: start again
    try:
        notes = _apply_all(pristine, dest, patches, allow_fuzz=True)
    except QueueError as exc:
        return Applied(NO, _failures(exc))
    return Applied(FUZZ, notes)


# ---------------------------------------------------------------- testing


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path) -> None:
    """A venv with requirements/behaviour.txt; (re)made when they change."""
    cfg = venv / "pyvenv.cfg"
    if cfg.exists() and f"version = {platform.python_version()}\n" not in (
        cfg.read_text()
    ):
        shutil.rmtree(venv)  # made by another Python: its wheels would not fit
    if not venv_python(venv).exists():
        make_venv(venv)
    stamp = venv / "behaviour.sha256"
    digest = hashlib.sha256(BEHAVIOUR.read_bytes() + CONSTRAINTS.read_bytes())
    if not stamp.exists() or stamp.read_text() != digest.hexdigest():
        pip(venv, "install", "--quiet", "-c", str(CONSTRAINTS), "-r", str(BEHAVIOUR))
        stamp.write_text(digest.hexdigest())


def build_key(pin: sdist.Pin, patches: list[Patch]) -> str:
    """Identifies a patched build: sdist, patches and the interpreter."""
    h = hashlib.sha256(pin.sha256.encode())
    for p in patches:
        h.update(p.name.encode() + b"\0" + p.diff.encode("utf-8", "surrogateescape"))
    h.update(f"{sys.implementation.cache_tag} {sysconfig.get_platform()}".encode())
    return h.hexdigest()[:16]


def install_build(venv: Path, tree: Path, wheel_dir: Path) -> None:
    """Install the patched tree into venv, compiling it unless wheel_dir has it.

    Other aiohttp versions conflict with the constraints' aiohttp pin, hence
    --no-deps and no -c here.
    """
    for stale in wheel_dir.parent.glob(wheel_dir.name.split("-")[0] + "-*"):
        if stale != wheel_dir:  # an older build of the same release
            shutil.rmtree(stale)
    if not any(wheel_dir.glob("*.whl")):
        pip(
            venv,
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheel_dir),
            str(tree),
        )
    [wheel] = wheel_dir.glob("*.whl")
    pip(venv, "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel))


def run_tests(venv: Path, deselect: tuple[str, ...], log_dir: Path) -> TestResult:
    junit = log_dir / "junit.xml"
    junit.unlink(missing_ok=True)
    cmd = [
        str(venv_python(venv)),
        "-m",
        "pytest",
        TESTS,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
    ]
    for test in deselect:
        cmd += ["--deselect", test]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    log = log_dir / "pytest.log"
    try:
        with log.open("w") as out:
            subprocess.run(
                cmd,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=TEST_TIMEOUT,
            )
    except subprocess.TimeoutExpired:
        return TestResult(0, 0, 0, note=f"timed out after {TEST_TIMEOUT} s")
    if not junit.exists():
        return TestResult(0, 0, 0, note=f"pytest did not run; see {log}")
    return read_junit(junit)


# ---------------------------------------------------------------- matrix


@dataclass
class Row:
    version: str
    sha256: str  # "verified", or why not
    applies: str  # ZERO_FUZZ, OFFSETS, FUZZ, NO, UPSTREAM or REFUSED
    details: list[str] = field(default_factory=list)
    tests: str = "n/a"
    test_result: TestResult | None = None
    main: bool = False  # the release upstream.toml pins
    drop: list[str] = field(default_factory=list)  # patches upstream has here

    @property
    def ok(self) -> bool:
        """Good enough for the main pin: applies cleanly and tests pass."""
        if self.sha256 != "verified" or self.applies not in (ZERO_FUZZ, OFFSETS):
            return False
        result = self.test_result
        return result is None or (not result.note and not result.failed)


@dataclass
class Options:
    patches: list[Patch]
    out: Path = OUT
    cache_dir: Path = sdist.CACHE_DIR
    tests: bool = True
    main_version: str = ""


def check_version(pin: sdist.Pin, opts: Options, say: Callable[[str], None]) -> Row:
    row = Row(pin.version, "verified", REFUSED, main=pin.version == opts.main_version)
    row.drop = drops(opts.patches, pin.version)
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
        row.applies, row.details = applied.status, applied.notes
        if applied.status == NO or not opts.tests:
            return row
        venv = opts.out / "venv"
        ensure_venv(venv)
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
        row.test_result, row.tests = result, result.summary()
        row.details += [f"failed: {t}" for t in result.failing]
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)  # unpacked trees are large


class Progress:
    def __init__(self, index: int, total: int, version: str) -> None:
        self.prefix = f"[{index}/{total}] aiohttp {version}:"

    def __call__(self, step: str) -> None:
        print(f"{self.prefix} {step}…", flush=True)


def run(pins: list[sdist.Pin], opts: Options) -> list[Row]:
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


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _grouped(details: list[str]) -> list[str]:
    """One line per patch: "a.patch: note; note" instead of repeating it."""
    lines: list[str] = []
    last = None
    for detail in details:
        name, sep, note = detail.partition(": ")
        if sep and name.endswith(".patch") and name == last:
            lines[-1] += f"; {note}"
        else:
            lines.append(detail)
        last = name if sep and name.endswith(".patch") else None
    return lines


def drops(patches: list[Patch], version: str) -> list[str]:
    """The patches whose DEP-3 Applied-Upstream release is version or older."""
    return [p.name for p in patches if dep3.dropped_at(p.message, version)]


def applied_upstream(patches: list[Patch]) -> dict[str, dep3.AppliedUpstream]:
    return {
        p.name: found for p in patches if (found := dep3.applied_upstream(p.message))
    }


def render_drops(
    rows: list[Row], series: list[str], upstream: dict[str, dep3.AppliedUpstream]
) -> list[str]:
    """Which patches to drop at which release, from their Applied-Upstream."""
    lines = ["", "## Patches upstream has (DEP-3 `Applied-Upstream`)", ""]
    if not upstream:
        return lines + [
            "No patch names an upstream release that has its change, so none "
            "is dropped at any release.",
            "",
        ]
    lines += ["| patch | applied upstream | drop at |", "| --- | --- | --- |"]
    for name in series:
        if name in upstream:
            found = upstream[name]
            when = f"{found.release} and later" if found.release else "no release named"
            lines.append(f"| `{name}` | {_cell(str(found))} | {when} |")
    lines += ["", "| release | drop | keep |", "| --- | --- | --- |"]
    for row in rows:
        if row.drop:
            keep = [n for n in series if n not in row.drop]
            cells = [
                ", ".join(f"`{n}`" for n in names) or "-" for names in (row.drop, keep)
            ]
            lines.append(f"| {row.version} | {cells[0]} | {cells[1]} |")
    return lines + [""]


def render_markdown(
    rows: list[Row],
    series: list[str],
    python: str,
    upstream: dict[str, dep3.AppliedUpstream] | None = None,
) -> str:
    names = ", ".join(f"`{n}`" for n in series) or "(empty series)"
    lines = [
        "# The series against aiohttp releases",
        "",
        f"Series: {names}. Behaviour tests: `{TESTS}` on Python {python}, "
        "against each release with the series applied.",
        "",
        "| version | sha256 | applies | details | behaviour tests |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        version = f"**{row.version}** (main pin)" if row.main else row.version
        details = "<br>".join(_cell(d) for d in _grouped(row.details)) or "-"
        cells = [version, row.sha256, row.applies, details, _cell(row.tests)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "applies: *zero fuzz* every hunk at its line; *offsets* every hunk "
        "exact but moved; *fuzz* only with context lines ignored (fuzz 2); "
        "*no* a hunk fails even with fuzz; *already upstream* the release "
        "applies the connect timeout in BaseConnector.connect itself.",
        f"For releases other than the main pin, `{PIN_ONLY_TESTS[0]}` is "
        "deselected: it checks the version number.",
    ]
    lines += render_drops(rows, series, upstream or {})
    return "\n".join(lines)


def render_json(
    rows: list[Row],
    series: list[str],
    python: str,
    upstream: dict[str, dep3.AppliedUpstream] | None = None,
) -> str:
    data = {
        "python": python,
        "series": series,
        "applied_upstream": {
            name: asdict(found) for name, found in (upstream or {}).items()
        },
        "rows": [
            {k: v for k, v in asdict(row).items() if k != "test_result"}
            | {"test_result": asdict(row.test_result) if row.test_result else None}
            for row in rows
        ],
    }
    return json.dumps(data, indent=1) + "\n"


def write_reports(
    rows: list[Row],
    series: list[str],
    out: Path,
    upstream: dict[str, dep3.AppliedUpstream] | None = None,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    python = platform.python_version()
    (out / "matrix.md").write_text(render_markdown(rows, series, python, upstream))
    (out / "matrix.json").write_text(render_json(rows, series, python, upstream))


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
        default=ROOT / "patches",
        help="the series directory (default: patches/)",
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    main_pin = sdist.load_pin()
    pins = select(load_pins(main=main_pin), args.versions)
    entries = read_series(args.patches)
    patches = [read_patch(e) for e in entries]
    opts = Options(patches, tests=not args.no_tests, main_version=main_pin.version)
    rows = run(pins, opts)
    write_reports(rows, [e.name for e in entries], OUT, applied_upstream(patches))
    print(
        f"wrote {OUT / 'matrix.md'} and matrix.json ({time.monotonic() - start:.0f} s)"
    )
    print((OUT / "matrix.md").read_text())
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

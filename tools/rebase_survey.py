"""make rebase-survey: what `make rebase TO=…` does for each release matrix.toml pins.

    python -m tools.rebase_survey [--versions 3.10.0,3.10.9] [--no-record]

Each release is tried in a scratch copy of the project (its tools,
patches, pin and matrix; the verified sdists are shared), so the project
itself, its checkout and its patches never change. The outcome is read
from git, not from the rebase's messages: where the replay stopped, which
files it left unmerged, or how many patches it carried. The table goes to
build/rebase-survey.md and to the "rebase" section of docs/measurements.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools import sdist
from tools.cli import reports_errors
from tools.measurements import invocation, record
from tools.patches import read_series
from tools.project import (
    BUILD,
    CACHE_DIR,
    MATRIX_FILE,
    PIN_FILE,
    ROOT,
    ToolError,
    clean_env,
    git,
    load_pin,
    matrix_pins,
)

# What a scratch project needs to apply and rebase the series.
PROJECT_FILES = ("tools", "patches", "requirements", PIN_FILE.name, MATRIX_FILE.name)
REPORT = BUILD / "rebase-survey.md"


@dataclass(frozen=True)
class Outcome:
    version: str
    carried: int  # patches in the refreshed series (0 when stopped)
    stopped_at: str  # the patch the replay stopped at ("" when clean)
    conflicts: tuple[str, ...]  # files left unmerged


def scratch_project(dest: Path) -> Path:
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, dest / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(src, dest / name)
    # the verified sdists, hard-linked (the queue follows no link out of a project)
    cache = dest / "build" / "cache"
    cache.mkdir(parents=True)
    for archive in CACHE_DIR.glob("*.tar.gz"):
        try:
            os.link(archive, cache / archive.name)
        except OSError:  # another filesystem
            shutil.copy2(archive, cache / archive.name)
    return dest


def tool(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.pop("AIOHTTP_SERIES_ROOT", None)  # the scratch copy is its own root
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )


def try_rebase(version: str, work: Path) -> Outcome:
    project = scratch_project(work / version)
    applied = tool(project, "tools.patchq", "apply")
    if applied.returncode:
        raise ToolError(
            f"{ROOT}: `make apply` fails in a copy: {applied.stderr.strip()}"
        )
    tool(project, "tools.rebase", "--to", version)
    tree = project / "build" / "aiohttp"
    unmerged = git(tree, "diff", "--name-only", "--diff-filter=U").split()
    if unmerged:
        subject = git(tree, "log", "-1", "--format=%s", "REBASE_HEAD").strip()
        number = (
            tree / git(tree, "rev-parse", "--git-path", "rebase-merge/msgnum").strip()
        )
        stopped = f"{int(number.read_text()):04d} ({subject})"
        return Outcome(version, 0, stopped, tuple(unmerged))
    if load_pin(project / PIN_FILE.name).version != version:
        raise ToolError(f"{ROOT}: rebase to {version} neither stopped nor completed")
    return Outcome(version, len(read_series(project / "patches")), "", ())


def render(outcomes: list[Outcome], base: str) -> str:
    lines = [
        f"`make rebase TO=…` from {base}, each in a scratch copy of the project:",
        "",
        "| target | result | conflicts in |",
        "| --- | --- | --- |",
    ]
    for o in outcomes:
        if o.conflicts:
            files = ", ".join(f"`{f}`" for f in o.conflicts)
            lines.append(f"| {o.version} | stops at {o.stopped_at} | {files} |")
        else:
            lines.append(f"| {o.version} | clean: {o.carried} patches carried | — |")
    lines += [
        "",
        "A release that already has a patch's change (its DEP-3",
        "`Applied-Upstream`; `make matrix` lists them) conflicts by nature:",
        "drop that patch before rebasing rather than resolve it.",
    ]
    return "\n".join(lines) + "\n"


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rebase_survey")
    parser.add_argument("--versions", help="comma-separated (default: matrix.toml's)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    base = load_pin()
    pins = [p for p in matrix_pins() if p.version != base.version]
    if args.versions:
        wanted = args.versions.split(",")
        pins = [p for p in pins if p.version in wanted]
    BUILD.mkdir(exist_ok=True)
    for pin in [base, *pins]:  # into the cache once, for every scratch copy
        sdist.fetch(pin)
    outcomes = []
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="tmp-survey-") as tmp:
        for pin in pins:
            print(f"rebase to {pin.version} ...", flush=True)
            outcomes.append(try_rebase(pin.version, Path(tmp)))
    table = render(outcomes, base.version)
    REPORT.write_text(table, encoding="utf-8")
    print(table)
    if not args.no_record:
        record(
            "rebase",
            table,
            invocation("tools.rebase_survey", argv),
            title="Carrying the series to other releases (make rebase-survey)",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

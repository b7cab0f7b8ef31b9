"""The tests each patch adds to aiohttp's own suite must prove that patch.

    python -m tools.intree [--venv build/venvs/pristine] [--run-timeout 180]

For every patch in patches/series that changes aiohttp's package (a code
patch), the test functions it adds under tests/ are read from its diff and
run, with aiohttp's tests as that patch leaves them, against:

  - the tree before the patch (the earlier patches applied): all must fail;
  - pristine, when that is a different tree: all must fail;
  - the tree with the patch: all must pass.

Each run has a hard time bound (--run-timeout): a test that hangs instead of
failing fails the check. A code patch that adds no test fails it too.

The trees are the commits `make apply` built in build/aiohttp. A run uses
the venv's compiled aiohttp (pristine 3.10.10 by default) with the tree's
Python modules laid over it on PYTHONPATH, so no tree needs compiling; the
check refuses a series that changes anything but .py files in the package.
Logs and junit XML land in build/intree/.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tools.checkout_state import stale_or_local
from tools.cli import ToolError, reports_errors
from tools.patches import Patch, read_patch, read_series
from tools.project import (
    BUILD,
    CHECKOUT,
    PATCHES,
    VENVS,
    clean_env,
    export_tree,
    git,
    load_pin,
)

OUT = BUILD / "intree"
DEFAULT_VENV = VENVS["pristine"]
PACKAGE = "aiohttp/"
RUN_TIMEOUT = 180.0  # seconds for one pytest run; the tests guard each wait
# A test function the diff adds at the top level of a test module.
ADDED_TEST = re.compile(r"^\+(?:async )?def (test_\w+)\(")
TEST_MODULE = re.compile(r"^tests/(?:.*/)?test_[^/]*\.py$")


class InTreeError(ToolError):
    pass


# ---------------------------------------------------------------- the series


@dataclass(frozen=True)
class CodePatch:
    index: int  # 1-based position in the series: commit HEAD~(n - index)
    name: str
    tests: tuple[str, ...]  # pytest node ids: tests/test_x.py::test_y


def added_tests(diff: str) -> list[str]:
    """Node ids of the top-level test functions a diff adds to test modules."""
    tests, current = [], None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[4:].split("\t", 1)[0]
            current = path[2:] if path.startswith("b/") else None
            if current is not None and not TEST_MODULE.match(current):
                current = None
        elif current and (m := ADDED_TEST.match(line)):
            tests.append(f"{current}::{m[1]}")
    return tests


def code_patches(patches: list[Patch]) -> list[CodePatch]:
    """The patches that change the package, each with the tests it adds."""
    found = []
    for index, patch in enumerate(patches, 1):
        package = [f.path for f in patch.files if f.path.startswith(PACKAGE)]
        compiled = [p for p in package if not p.endswith(".py")]
        if compiled:
            raise InTreeError(
                f"{patch.name}: changes {', '.join(compiled)}; the check lays "
                "Python modules over a compiled build and cannot test that."
            )
        if not package:
            continue
        tests = added_tests(patch.diff)
        if not tests:
            raise InTreeError(
                f"{patch.name}: changes {', '.join(package)} but adds no test "
                "function under tests/. Add one that fails without the patch."
            )
        found.append(CodePatch(index, patch.name, tuple(tests)))
    return found


@dataclass(frozen=True)
class Run:
    patch: CodePatch
    code: int  # how many patches the code under test has (0 = pristine)
    expect_fail: bool

    @property
    def against(self) -> str:
        if self.code == 0:
            return "pristine"
        if self.code == self.patch.index:
            return "with the patch"
        return f"patches 1-{self.code} only"


def plan(patches: list[CodePatch]) -> list[Run]:
    """Fail before the patch and on pristine, pass with it."""
    runs = []
    for patch in patches:
        for code in sorted({0, patch.index - 1}):
            runs.append(Run(patch, code, expect_fail=True))
        runs.append(Run(patch, patch.index, expect_fail=False))
    return runs


# ---------------------------------------------------------------- verdicts


def read_cases(junit: Path) -> dict[str, str]:
    """Test case (test_x[params]) -> "passed", "failed" or "skipped".

    pytest writes a teardown error as a second entry for the same case; a
    failure or error anywhere makes the case failed.
    """
    cases: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            cases[name] = "failed"
        elif case.find("skipped") is not None:
            cases.setdefault(name, "skipped")
        else:
            cases.setdefault(name, "passed")
    return cases


def verdict(run: Run, cases: dict[str, str] | None, returncode: int | None) -> str:
    """ "ok", or what went wrong. cases is None when pytest wrote no results."""
    if returncode is None:
        return "did not finish in time (a test hangs)"
    if cases is None:
        return f"pytest exited {returncode} without results"
    by_test: dict[str, set[str]] = {}
    for case, status in cases.items():
        by_test.setdefault(case.split("[", 1)[0], set()).add(status)
    wanted = [t.rsplit("::", 1)[1] for t in run.patch.tests]
    missing = [t for t in wanted if t not in by_test]
    if missing:
        return f"did not run: {', '.join(missing)}"
    expected = "failed" if run.expect_fail else "passed"
    wrong = sorted(c for c, status in cases.items() if status != expected)
    if wrong:
        how = "without the patch" if run.expect_fail else "with the patch"
        outcomes = sorted({cases[c] for c in wrong})
        return f"{' / '.join(outcomes)} {how}: {', '.join(wrong)}"
    return "ok"


# ---------------------------------------------------------------- running


def commits(tree: Path, count: int) -> list[str]:
    """The checkout's commits: [pristine tag, patch 1, ..., patch count]."""
    pin = load_pin()
    listed = git(tree, "rev-list", "--reverse", f"{pin.tag}..HEAD").split()
    if len(listed) != count:
        raise InTreeError(
            f"{tree} holds {len(listed)} commits above {pin.tag}, the series "
            f"{count} patches: run `make apply` first."
        )
    return [git(tree, "rev-parse", pin.tag).strip(), *listed]


def ensure_checkout_matches(tree: Path, patches_dir: Path) -> None:
    if stale_or_local(tree, load_pin(), patches_dir):
        raise InTreeError(
            f"{tree} is not what patches/ builds: run `make apply` first."
        )


def extract(tree: Path, commit: str, paths: list[str], dest: Path) -> None:
    export_tree(tree, commit, dest, paths)


def installed_package(python: Path) -> Path:
    where = "import aiohttp, os; print(os.path.dirname(aiohttp.__file__))"
    done = subprocess.run(
        [str(python), "-c", where],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    if done.returncode:
        raise InTreeError(f"{python}: cannot import aiohttp: {done.stderr.strip()}")
    return Path(done.stdout.strip())


def overlay(build: Path, tree: Path, commit: str, dest: Path) -> Path:
    """dest/aiohttp: the compiled build with the commit's .py modules on top."""
    shutil.rmtree(dest, ignore_errors=True)
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(build, dest / "aiohttp", ignore=skip)
    source = dest.with_name(dest.name + "-src")
    shutil.rmtree(source, ignore_errors=True)
    extract(tree, commit, ["aiohttp"], source)
    for module in (source / "aiohttp").rglob("*.py"):
        target = dest / module.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module, target)
    shutil.rmtree(source)
    return dest


def _clean_env(**extra: str) -> dict[str, str]:
    return clean_env({"PYTHONDONTWRITEBYTECODE": "1", **extra})


def pytest_config(tree: Path, commit: str) -> str:
    """aiohttp's pytest settings: pytest.ini from 3.12 on, setup.cfg before."""
    found = git(tree, "ls-tree", "--name-only", commit, "pytest.ini").strip()
    return found or "setup.cfg"


def run_pytest(
    python: Path,
    cwd: Path,
    site: Path,
    tests: tuple[str, ...],
    out: Path,
    bound: float,
    config: str = "setup.cfg",
) -> tuple[dict[str, str] | None, int | None, float]:
    """(results, exit status or None when killed at the bound, seconds)."""
    junit = out / "junit.xml"
    junit.unlink(missing_ok=True)
    cmd = [
        str(python),
        "-m",
        "pytest",
        "-c",
        config,
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={junit}",
        *tests,
    ]
    start = time.monotonic()
    with (out / "pytest.log").open("w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=_clean_env(PYTHONPATH=str(site)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one
        )
        try:
            returncode: int | None = proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = None
    seconds = time.monotonic() - start
    cases = read_cases(junit) if returncode is not None and junit.exists() else None
    return cases, returncode, seconds


@dataclass
class Outcome:
    run: Run
    verdict: str
    seconds: float
    log: Path
    cases: int  # test cases pytest reported (parametrized tests count each)


def check(
    venv: Path = DEFAULT_VENV,
    *,
    tree: Path = CHECKOUT,
    patches_dir: Path = PATCHES,
    out: Path = OUT,
    bound: float = RUN_TIMEOUT,
) -> list[Outcome]:
    ensure_checkout_matches(tree, patches_dir)
    patches = [read_patch(e) for e in read_series(patches_dir)]
    runs = plan(code_patches(patches))
    refs = commits(tree, len(patches))
    python = venv / "bin" / "python"
    if not python.exists():
        raise InTreeError(f"{python}: missing; run `make venv-pristine` first.")
    build = installed_package(python)
    shutil.rmtree(out, ignore_errors=True)
    outcomes = []
    for n, run in enumerate(runs, 1):
        work = out / f"{n:02d}-{run.patch.index}-{run.code}"
        # aiohttp's tests as this patch leaves them; nothing of the package,
        # so that `import aiohttp` finds the overlay
        config = pytest_config(tree, refs[run.patch.index])
        extract(tree, refs[run.patch.index], ["tests", config], work / "tree")
        site = overlay(build, tree, refs[run.code], work / "site")
        print(
            f"[{n}/{len(runs)}] {run.patch.name}: {len(run.patch.tests)} tests "
            f"against {run.against} ...",
            end=" ",
            flush=True,
        )
        cases, code, seconds = run_pytest(
            python, work / "tree", site, run.patch.tests, work, bound, config
        )
        outcome = Outcome(
            run,
            verdict(run, cases, code),
            seconds,
            work / "pytest.log",
            len(cases or {}),
        )
        print(
            f"{'fail' if run.expect_fail else 'pass'} expected: {outcome.verdict} "
            f"({seconds:.1f} s)",
            flush=True,
        )
        outcomes.append(outcome)
    return outcomes


def render(outcomes: list[Outcome], bound: float) -> str:
    lines = [
        "# The series' in-tree tests",
        "",
        f"Each run is bounded by {bound:.0f} s.",
        "",
        "| patch | tests (cases) | against | expected | result | seconds |",
        "| --- | ---: | --- | --- | --- | ---: |",
    ]
    for o in outcomes:
        r = o.run
        lines.append(
            f"| {r.patch.name} | {len(r.patch.tests)} ({o.cases}) | {r.against} | "
            f"{'fail' if r.expect_fail else 'pass'} | {o.verdict} | {o.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.intree",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--run-timeout", type=float, default=RUN_TIMEOUT)
    args = parser.parse_args(argv)
    outcomes = check(args.venv.absolute(), bound=args.run_timeout)
    report = render(outcomes, args.run_timeout)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text(report)
    print(report)
    bad = [o for o in outcomes if o.verdict != "ok"]
    for o in bad:
        print(
            f"error: {o.run.patch.name} against {o.run.against}: {o.verdict}; "
            f"see {o.log}",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

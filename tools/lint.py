"""make lint: upstream's linters on the series, ruff and mypy on our code,
actionlint (with shellcheck and pyflakes on the run: scripts) and zizmor on
.github/workflows.

For every Python file the series touches, black, isort, flake8 and mypy run
on the pristine and the patched version with aiohttp's own settings; a
finding fails the run only if pristine does not have it already. Findings
are compared without line numbers, which the patch shifts.

The sdist ships no .mypy.ini, so mypy runs with MYPY_FLAGS below, close to
what aiohttp's CI enforces on its own package.

zizmor audits the workflows' security at its default persona, offline (its
online audits need a GitHub token and network; the lint must give the same
answer everywhere). A finding that is accepted would be relaxed, with the
reason, in zizmor.yml at the project root; today there is none.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tools.cli import reports_errors
from tools.project import CHECKOUT, ROOT, export_tree, git, load_pin, require_checkout

MYPY_FLAGS = (
    "--follow-imports=silent",
    "--check-untyped-defs",
    "--disallow-untyped-defs",
    "--disallow-incomplete-defs",
    "--warn-unused-ignores",
    "--warn-redundant-casts",
    "--strict-equality",
    "--no-error-summary",
    "--hide-error-context",
    "--show-error-codes",
    "--no-incremental",
    "--python-version=3.8",
)
LINE_NO = re.compile(r":\d+(:\d+)?:")
WORKFLOWS = ".github/workflows"


def tool(name: str) -> list[str]:
    return [sys.executable, "-m", name]


def findings(tree: Path, files: list[str]) -> Counter[str]:
    """Every finding of aiohttp's linters on these files, line numbers dropped."""
    found: Counter[str] = Counter()

    def run(cmd: list[str]) -> str:
        done = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
        return done.stdout + done.stderr

    for f in files:
        if run([*tool("black"), "--check", "--quiet", f]).strip():
            found[f"black: {f} would be reformatted"] += 1
        if "ERROR" in run(
            [*tool("isort"), "--check-only", "--settings-path", "setup.cfg", f]
        ):
            found[f"isort: {f} imports are not sorted"] += 1
    for line in run([*tool("flake8"), "--config", "setup.cfg", *files]).splitlines():
        found[f"flake8: {LINE_NO.sub(':', line)}"] += 1
    for line in run([*tool("mypy"), *MYPY_FLAGS, *files]).splitlines():
        if ": error:" in line:
            found[f"mypy: {LINE_NO.sub(':', line)}"] += 1
    return found


def lint_series(tree: Path = CHECKOUT) -> list[str]:
    """Findings the series adds over pristine; empty when it adds none."""
    tag = load_pin().tag
    require_checkout(tree)
    changed = git(tree, "diff", "--name-only", "--diff-filter=AM", f"{tag}..HEAD")
    files = [f for f in changed.split() if f.endswith(".py")]
    if not files:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        pristine, patched = Path(tmp) / "pristine", Path(tmp) / "patched"
        export_tree(tree, tag, pristine)
        export_tree(tree, "HEAD", patched)
        existing = [f for f in files if (pristine / f).exists()]
        before = findings(pristine, existing)
        after = findings(patched, files)
    print(
        f"aiohttp linters on {len(files)} files the series touches: "
        f"{sum(before.values())} findings on pristine, {sum(after.values())} patched"
    )
    return sorted((after - before).elements())


def actionlint(root: Path = ROOT) -> bool:
    """The GitHub workflows under root/.github/workflows; True when clean."""
    bin_dir = Path(sys.executable).parent  # the venv's: pinned in lint.txt
    done = subprocess.run(
        [
            str(bin_dir / "actionlint"),
            f"-shellcheck={bin_dir / 'shellcheck'}",
            f"-pyflakes={bin_dir / 'pyflakes'}",
        ],
        cwd=root,
    )
    return done.returncode == 0


def zizmor(root: Path = ROOT) -> bool:
    """zizmor's audits of root/.github/workflows; True when it finds nothing."""
    bin_dir = Path(sys.executable).parent  # the venv's: pinned in lint.txt
    config = ["--config", "zizmor.yml"] if (root / "zizmor.yml").exists() else []
    done = subprocess.run(
        [str(bin_dir / "zizmor"), "--offline", "--quiet", *config, WORKFLOWS],
        cwd=root,
    )
    return done.returncode == 0


def lint_ours() -> bool:
    ours = ["tools", "tests", "bench", "toxfile.py"]
    ok = subprocess.run([*tool("ruff"), "check", *ours], cwd=ROOT).returncode == 0
    ok &= (
        subprocess.run([*tool("ruff"), "format", "--check", *ours], cwd=ROOT).returncode
        == 0
    )
    mypy = [
        *tool("mypy"),
        "--ignore-missing-imports",
        "--check-untyped-defs",
        "--python-version=3.11",
        "--exclude",
        "tests/tools/fixtures",
        *ours,
    ]
    ok &= actionlint()
    ok &= zizmor()
    return subprocess.run(mypy, cwd=ROOT).returncode == 0 and ok


@reports_errors
def main() -> int:
    new = lint_series()
    for finding in new:
        print(f"new finding: {finding}")
    ours_ok = lint_ours()
    if new or not ours_ok:
        print("lint: FAILED", file=sys.stderr)
        return 1
    print("lint: no new findings in the series; our code and workflows are clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())

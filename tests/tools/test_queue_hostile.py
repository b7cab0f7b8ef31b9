"""Nothing in a patch, a checkout or the environment runs code (issue 19).

Items 1 and 2: a patch that writes through a symlink or into a .git
directory, however its names are spelled, is refused before anything is
written, and no hook or config command of the checkout runs during our own
git commands. Each test tries one way a hostile contributor got code run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.tools.throwaway import (
    SMALL_LINES,
    Project,
    line_patch,
    make_sdist,
    small_files,
)

P1 = line_patch("Change line four", 4, "changed 4")
HOOKS = (
    "pre-commit",
    "commit-msg",
    "post-commit",
    "post-checkout",
    "pre-rebase",
    "post-rewrite",
    "reference-transaction",
    "post-index-change",
)


def applied(project: Project) -> Project:
    project.write_series({"0001-Change-line-four.patch": P1})
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    return project


def arm(tree: Path, markers: Path) -> None:
    """Every hook, and an fsmonitor command, leave a file in markers/ if run."""
    hooks = tree / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in HOOKS:
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\ntouch '{markers}/{name}'\n")
        hook.chmod(0o755)
    with (tree / ".git" / "config").open("a") as config:  # not `git config`:
        config.write(f"[core]\n\tfsmonitor = touch '{markers}/fsmonitor'; false\n")


def test_the_checkouts_hooks_and_fsmonitor_never_run(
    small_project: Project, tmp_path: Path
) -> None:
    project = applied(small_project)
    lines = project.checkout / "lines.txt"
    lines.write_text(lines.read_text().replace("line 16", "changed 16"))
    project.git("commit", "-q", "-a", "-m", "Change line sixteen")
    markers = tmp_path / "markers"
    markers.mkdir()
    arm(project.checkout, markers)
    runs = [project.run("refresh"), project.run("apply")]
    sha = make_sdist(
        project.root / "build" / "cache", "1.1", small_files(["new", *SMALL_LINES])
    )
    (project.root / "matrix.toml").write_text(f'[sdists]\n"1.1" = "{sha}"\n')
    runs.append(project.run("--to", "1.1", module="tools.rebase"))
    assert sorted(p.name for p in markers.iterdir()) == []
    for done in runs:
        assert done.returncode == 0, done.stderr
    assert "+changed 16" in project.git("show", "HEAD")  # the replay happened


def test_git_variables_of_the_caller_do_not_redirect_the_checkout(
    small_project: Project, tmp_path: Path
) -> None:
    """As when `make apply` runs from inside a git hook of another repo."""
    other = tmp_path / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", str(other)], check=True)
    project = small_project
    project.write_series({"a.patch": P1})
    done = subprocess.run(
        [sys.executable, "-m", "tools.patchq", "apply"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "AIOHTTP_SERIES_ROOT": str(project.root),
            "GIT_DIR": str(other),
            "GIT_INDEX_FILE": str(tmp_path / "index"),
        },
    )
    assert done.returncode == 0, done.stderr
    assert "changed 4" in project.git("show", "HEAD")
    refs = subprocess.run(
        ["git", "--git-dir", str(other), "for-each-ref"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert refs.stdout == ""
    assert not (tmp_path / "index").exists()

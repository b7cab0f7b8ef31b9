"""Refresh and unapply work from the queue branch only (issue 19, items 3, 12).

A detached HEAD, another branch or an unfinished git operation of the
user's own is refused in one line whose advice works as pasted (the
checkout's path has a space here), and no commit is lost.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.tools.conftest import copy_tools
from tests.tools.throwaway import Project, line_patch, one_error_line, small_files

P1 = line_patch("Change line four", 4, "changed 4")
P2 = line_patch("Change line twelve", 12, "changed 12")
NAMES = ("0001-Change-line-four.patch", "0002-Change-line-twelve.patch")


@pytest.fixture
def queue(tmp_path: Path) -> Project:
    """A refreshed queue of two patches, in a directory whose name has a space."""
    root = tmp_path / "a dir" / "proj"
    copy_tools(root)
    project = Project(root)
    project.pin("1.0", small_files())
    project.write_series(dict(zip(NAMES, (P1, P2))))
    for command in ("apply", "refresh"):
        done = project.run(command)
        assert done.returncode == 0, done.stderr
    return project


def advice(line: str, verb: str) -> list[str]:
    """The quoted git command in an error line that does `verb`."""
    for command in re.findall(r"`(git -C [^`]+)`", line):
        if f" {verb}" in command:
            return shlex.split(command)
    raise AssertionError(f"no `git ... {verb}` in {line}")


def run_git(args: list[str], **env: str) -> None:
    done = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr


def test_a_detached_head_is_refused_and_no_commit_is_lost(queue: Project) -> None:
    before = queue.patch_files()
    last = queue.git("rev-parse", "HEAD").strip()
    queue.git("checkout", "-q", "HEAD~1")
    done = queue.run("refresh")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "detached" in line and "patch-queue" in line
    assert queue.patch_files() == before
    done = queue.run("unapply")
    assert done.returncode == 1 and "FORCE=1" in done.stderr
    assert "detached" in done.stderr
    assert queue.git("rev-parse", "patch-queue").strip() == last
    # the advice, pasted as it is, brings the queue back whole
    run_git(advice(line, "switch"))
    done = queue.run("refresh")
    assert done.returncode == 0, done.stderr
    assert queue.patch_files() == before


def test_unapply_with_force_off_the_branch_keeps_the_checkout(queue: Project) -> None:
    last = queue.git("rev-parse", "HEAD").strip()
    queue.git("checkout", "-q", "HEAD~1")
    done = queue.run("unapply", "--force")
    assert done.returncode == 0, done.stderr
    (kept,) = (queue.root / "build" / "aiohttp.discarded").iterdir()
    refs = subprocess.run(
        ["git", "-C", str(kept), "rev-parse", "patch-queue"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert refs.stdout.strip() == last


def test_another_branch_is_refused(queue: Project) -> None:
    before = queue.patch_files()
    queue.git("checkout", "-q", "-b", "side", "HEAD~1")
    done = queue.run("refresh")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "branch side" in line and "patch-queue" in line
    assert queue.patch_files() == before
    assert queue.run("apply").returncode == 1


def test_the_users_own_rebase_gets_advice_that_works(queue: Project) -> None:
    before = queue.patch_files()
    tag = "v1.0"
    run_git(
        ["git", "-C", str(queue.checkout), "rebase", "-q", "-i", tag],
        GIT_SEQUENCE_EDITOR="sed -i 1s/^pick/edit/",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    for args, module in (
        (["refresh"], "tools.patchq"),
        (["--continue"], "tools.rebase"),
    ):
        done = queue.run(*args, module=module)
        assert done.returncode == 1
        line = one_error_line(done.stderr)
        assert "your own" in line
        command = advice(line, "rebase")
        assert command[-2:] == ["rebase", "--continue"]
    assert queue.patch_files() == before
    run_git(command, GIT_EDITOR="true")
    done = queue.run("refresh")
    assert done.returncode == 0, done.stderr
    assert queue.patch_files() == before

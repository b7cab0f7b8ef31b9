"""make rebase on throwaway series: small sdists 1.0 -> 1.1 (tools/rebase.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.throwaway import (
    SMALL_FILE,
    SMALL_LINES,
    Project,
    line_patch,
    make_sdist,
    pin_text,
    small_files,
)
from tools.project import ROOT_VARIABLE

PATCH = line_patch("Change line ten", 10, "ours 10")
NAME = "0001-Change-line-ten.patch"


def release(project: Project, version: str, lines: list[str]) -> str:
    """Another release in the cache and in matrix.toml; its sha256."""
    sha = make_sdist(project.root / "build" / "cache", version, small_files(lines))
    (project.root / "matrix.toml").write_text(f'[sdists]\n"{version}" = "{sha}"\n')
    return sha


def changed(number: int, text: str) -> list[str]:
    lines = list(SMALL_LINES)
    lines[number - 1] = text
    return lines


@pytest.fixture
def queue(small_project: Project) -> Project:
    small_project.write_series({NAME: PATCH}, series=f"# our series\n{NAME} -p1\n")
    done = small_project.run("apply")
    assert done.returncode == 0, done.stderr
    return small_project


def rebase(project: Project, *args: str) -> tuple[int, str, str]:
    done = project.run(*args, module="tools.rebase")
    return done.returncode, done.stdout, done.stderr


def fresh_apply_matches(project: Project) -> None:
    """patches/ applies with zero fuzz to the new pin, to the same tree."""
    head_tree = project.git("rev-parse", "HEAD^{tree}")
    assert "up to date" in project.run("apply").stdout
    shutil.rmtree(project.checkout)
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    assert "note:" not in done.stdout  # no offsets either
    assert project.git("rev-parse", "HEAD^{tree}") == head_tree


def test_a_clean_rebase_moves_pin_and_patches(queue: Project) -> None:
    sha = release(queue, "1.1", ["new a", "new b", *SMALL_LINES])  # lines move
    patches_before = queue.patch_files()
    code, out, err = rebase(queue, "--to", "1.1")
    assert code == 0, err
    assert (queue.root / "upstream.toml").read_text() == pin_text("1.1", sha)
    text = (queue.root / "patches" / NAME).read_text()
    assert (
        "@@ -9,7 +9,7 @@" in text and "@@ -7,7 +7,7 @@" in patches_before[NAME].decode()
    )
    # comments and options of series are kept
    assert (queue.root / "patches" / "series").read_text() == (
        f"# our series\n{NAME} -p1\n"
    )
    log = queue.git("log", "--format=%s", "-3").splitlines()
    assert log == [
        "Change line ten",
        "Import aiohttp-1.1.tar.gz",
        "Import aiohttp-1.0.tar.gz",
    ]
    fresh_apply_matches(queue)


def test_a_rebase_that_needs_a_three_way_merge(queue: Project) -> None:
    # upstream changes line 8, inside the patch's context: patch refuses
    lines = changed(8, "upstream 8")
    sha = make_sdist(queue.root / "build" / "cache", "1.1", small_files(lines))
    (queue.root / "upstream.toml").write_text(pin_text("1.1", sha))  # the user's way
    plain = queue.run("apply")
    assert plain.returncode == 1 and "does not apply" in plain.stderr
    code, out, err = rebase(queue)
    assert code == 0, err
    merged = (queue.checkout / SMALL_FILE).read_text().splitlines()
    assert merged[7] == "upstream 8" and merged[9] == "ours 10"
    assert (queue.root / "upstream.toml").read_text() == pin_text("1.1", sha)
    fresh_apply_matches(queue)


def conflict(
    queue: Project,
) -> tuple[tuple[str, dict[str, bytes]], dict[str, bytes], str, str]:
    release(queue, "1.1", changed(10, "upstream 10"))
    before = queue.tree_state(), queue.patch_files()
    pin = (queue.root / "upstream.toml").read_text()
    code, out, err = rebase(queue, "--to", "1.1")
    assert code == 1
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in err
    assert NAME in line and SMALL_FILE in line
    assert "make rebase-continue" in line and "make rebase-abort" in line
    assert queue.patch_files() == before[1]
    assert (queue.root / "upstream.toml").read_text() == pin
    assert queue.git("status", "--porcelain").startswith(f"UU {SMALL_FILE}")
    return before[0], before[1], pin, line


def test_a_conflict_stops_then_continues(queue: Project) -> None:
    conflict(queue)
    # apply and refresh refuse to touch a checkout that is mid-rebase
    assert "rebase" in queue.run("refresh").stderr
    assert queue.run("apply").returncode == 1
    code, _, err = rebase(queue, "--continue")
    assert code == 1 and "still unresolved" in err and SMALL_FILE in err
    (queue.checkout / SMALL_FILE).write_text(
        "".join(f"{ln}\n" for ln in changed(10, "upstream 10 and ours"))
    )
    queue.git("add", SMALL_FILE)
    code, out, err = rebase(queue, "--continue")
    assert code == 0, err
    assert "+upstream 10 and ours" in (queue.root / "patches" / NAME).read_text()
    assert 'version = "1.1"' in (queue.root / "upstream.toml").read_text()
    fresh_apply_matches(queue)


def test_abort_restores_everything(queue: Project) -> None:
    tree, patches, pin, _ = conflict(queue)
    code, out, err = rebase(queue, "--abort")
    assert code == 0, err
    assert queue.tree_state() == tree
    assert queue.patch_files() == patches
    assert (queue.root / "upstream.toml").read_text() == pin
    done = queue.run("apply")
    assert done.returncode == 0 and "up to date" in done.stdout


def test_rebase_refuses_a_checkout_with_work(queue: Project) -> None:
    release(queue, "1.1", ["new a", *SMALL_LINES])
    (queue.checkout / "notes.txt").write_text("mine\n")
    code, _, err = rebase(queue, "--to", "1.1")
    assert code == 1 and "notes.txt" in err and "make refresh" in err
    assert (queue.checkout / "notes.txt").read_text() == "mine\n"
    assert 'version = "1.0"' in (queue.root / "upstream.toml").read_text()


def test_rebase_to_a_version_matrix_does_not_pin(queue: Project) -> None:
    release(queue, "1.1", SMALL_LINES)
    code, _, err = rebase(queue, "--to", "9.9")
    assert code == 1 and "matrix.toml" in err and "9.9" in err


# SIGKILLs the process as it starts `git rebase --onto`: after the import
# of the new sdist, before the replay (issue 19, item 6).
KILL_BEFORE_REPLAY = """
import os, signal, sys

def _hook(event, args):
    if event == "subprocess.Popen" and "--onto" in [str(a) for a in args[1]]:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(_hook)
"""


def test_continue_after_a_kill_between_import_and_replay(
    queue: Project, tmp_path: Path
) -> None:
    release(queue, "1.1", ["new a", "new b", *SMALL_LINES])
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(KILL_BEFORE_REPLAY)
    killed = subprocess.run(
        [sys.executable, "-m", "tools.rebase", "--to", "1.1"],
        cwd=queue.root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(hooks), ROOT_VARIABLE: str(queue.root)},
    )
    assert killed.returncode == -9, killed.stderr
    assert "Version: 1.0" in (queue.checkout / "PKG-INFO").read_text()
    code, out, err = rebase(queue, "--continue")
    assert code == 0, err
    assert "Version: 1.1" in (queue.checkout / "PKG-INFO").read_text()
    assert "@@ -9,7 +9,7 @@" in (queue.root / "patches" / NAME).read_text()
    assert 'version = "1.1"' in (queue.root / "upstream.toml").read_text()
    fresh_apply_matches(queue)

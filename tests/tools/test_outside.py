"""No input and no symlink leads a command outside the project (issue 19).

Item 15: a link inside the project (build/, a patch, the lock, patches/
for refresh, build/ for make clean) or a path in an input (a series line,
the swap journal) must not make a command read or write anything outside
it. Each case plants a file outside and checks it is untouched and unread.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.tools.throwaway import ROOT, Project, line_patch, make, one_error_line

P1 = line_patch("Change line four", 4, "changed 4")
SECRET = "secret outside the project\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the project with a file no command may touch."""
    where = tmp_path / "outside"
    where.mkdir()
    (where / "secret").write_text(SECRET)
    return where


def untouched(outside: Path, *, expect: tuple[str, ...] = ("secret",)) -> None:
    assert sorted(p.name for p in outside.iterdir()) == sorted(expect)
    assert (outside / "secret").read_text() == SECRET


def refused(project: Project, *args: str, module: str = "tools.patchq") -> str:
    done = project.run(*args, module=module)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "secret outside" not in done.stdout + done.stderr
    return one_error_line(done.stderr)


def test_a_build_dir_linked_outside(small_project: Project, outside: Path) -> None:
    small_project.write_series({"a.patch": P1})
    build = small_project.root / "build"
    shutil.move(build / "cache", outside / "cache")
    build.rmdir()
    build.symlink_to(outside)
    line = refused(small_project, "apply")
    assert f"{build}: a symlink to {outside}" in line
    untouched(outside, expect=("cache", "secret"))


def test_a_patch_linked_outside(small_project: Project, outside: Path) -> None:
    small_project.write_series({})
    (small_project.root / "patches" / "a.patch").symlink_to(outside / "secret")
    (small_project.root / "patches" / "series").write_text("a.patch\n")
    line = refused(small_project, "apply")
    assert "a.patch: a symlink" in line
    untouched(outside)


def test_refresh_writes_no_patch_through_a_link(
    small_project: Project, outside: Path
) -> None:
    project = small_project
    project.write_series({"0001-Change-line-four.patch": P1})
    assert project.run("apply").returncode == 0
    lines = project.checkout / "lines.txt"
    lines.write_text(lines.read_text().replace("line 16", "changed 16"))
    project.git("commit", "-q", "-a", "-m", "Change line sixteen")
    pdir = project.root / "patches"
    (pdir / "0002-Change-line-sixteen.patch").symlink_to(outside / "secret")
    for args in (["refresh"], ["refresh", "--force"]):
        line = refused(project, *args)
        assert "0002-Change-line-sixteen.patch: a symlink" in line
    untouched(outside)


def test_a_series_line_out_of_patches_deletes_nothing(
    small_project: Project, outside: Path
) -> None:
    """refresh --force goes on past a series it cannot read, and then
    deleted the file a '../' line named."""
    project = small_project
    project.write_series({"0001-Change-line-four.patch": P1})
    assert project.run("apply").returncode == 0
    pdir = project.root / "patches"
    up = "../" * 6  # from build/tmp/patchq/<stage>/patches/ to the project's parent
    (pdir / "series").write_text(f"0001-Change-line-four.patch\n{up}outside/secret\n")
    assert project.run("refresh", "--force").returncode == 0
    untouched(outside)


def test_a_lock_linked_outside_is_not_truncated(
    small_project: Project, outside: Path
) -> None:
    small_project.write_series({"a.patch": P1})
    (small_project.root / "build" / "patchq.lock").symlink_to(outside / "secret")
    line = refused(small_project, "apply")
    assert "patchq.lock: a symlink" in line
    untouched(outside)


def test_a_journal_naming_paths_outside_moves_nothing(
    small_project: Project, outside: Path
) -> None:
    small_project.write_series({"a.patch": P1})
    journal = {
        "new": str(outside / "secret"),
        "new_ino": 0,
        "target": str(outside / "moved"),
        "old_to": str(outside / "old"),
        "keep_old": False,
        "then": {str(outside / "secret"): "overwritten\n"},
    }
    path = small_project.root / "build" / "patchq-swap.json"
    path.write_text(json.dumps(journal))
    line = refused(small_project, "apply")
    assert "patchq-swap.json: not a swap the tools began" in line
    assert "delete it" in line
    untouched(outside)


def test_make_clean_stays_inside(small_project: Project, outside: Path) -> None:
    shutil.copy(ROOT / "Makefile", small_project.root / "Makefile")
    (outside / "tmp").mkdir()
    (outside / "tmp" / "keep").write_text("mine\n")
    build = small_project.root / "build"
    shutil.rmtree(build)
    build.symlink_to(outside)
    done = make("clean", cwd=small_project.root)
    assert done.returncode != 0
    assert "a symlink to" in one_error_line(done.stderr)
    assert (outside / "tmp" / "keep").read_text() == "mine\n"
    untouched(outside, expect=("secret", "tmp"))

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

import pytest

from tests.tools.throwaway import (
    SMALL_LINES,
    Project,
    line_patch,
    make_patch,
    make_sdist,
    one_error_line,
    small_files,
)
from tools.patches import SeriesEntry, apply_patch, read_patch
from tools.project import ToolError

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


# ---------------------------------------------------------------- items 1, 2

HOOK = """
    new file mode 100755
    --- /dev/null
    +++ {plus}
    @@ -0,0 +1,2 @@
    +#!/bin/sh
    +touch "$HOME/hook-ran"
"""
LINK_THEN_HOOK = """
    diff --git a/h b/h
    new file mode 120000
    --- /dev/null
    +++ b/h
    @@ -0,0 +1 @@
    +.git
    \\ No newline at end of file
    diff --git a/h/hooks/post-commit b/h/hooks/post-commit
""" + HOOK.format(plus="b/h/hooks/post-commit")
QUOTED = """
    diff --git "a/\\056git/hooks/post-commit" "b/\\056git/hooks/post-commit"
""" + HOOK.format(plus='"b/\\056git/hooks/post-commit"')
NESTED = """
    diff --git a/tests/.git/config b/tests/.git/config
    new file mode 100644
    --- /dev/null
    +++ b/tests/.git/config
    @@ -0,0 +1,2 @@
    +[core]
    +\tfsmonitor = touch "$HOME/hook-ran"
"""
HEADER_ONLY_NEW = """
    diff --git a/.git/hooks/post-commit b/.git/hooks/post-commit
    new file mode 100755
    index 0000000..e69de29
"""
HEADER_ONLY_MODE = """
    diff --git a/.git/hooks/pre-commit.sample b/.git/hooks/pre-commit.sample
    old mode 100644
    new mode 100755
"""
UPPER_CASE = """
    diff --git a/.GIT/hooks/post-commit b/.GIT/hooks/post-commit
""" + HOOK.format(plus="b/.GIT/hooks/post-commit")
# P1's own change, so that apply commits (and a planted hook would run)
P1_DIFF = "".join(f"    {line}\n" for line in P1.split("---\n", 1)[1].splitlines())
ED_SCRIPT = "    1a\n    !touch $HOME/hook-ran\n    .\n    w\n    q\n"
HOSTILE = {
    "a symlink to .git, then a hook through it": LINK_THEN_HOOK,
    "a C-quoted .git": QUOTED,
    "a nested .git": NESTED,
    "a header-only new file in .git": HEADER_ONLY_NEW,
    "a header-only mode change in .git": HEADER_ONLY_MODE,
    "an upper-case .GIT": UPPER_CASE,
    "an ed script after the hunks": ED_SCRIPT,
}


def hostile_run(project: Project, home: Path, *args: str) -> str:
    """Run the queue as a hostile patch would have it; its one error line."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.patchq", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home), "AIOHTTP_SERIES_ROOT": str(project.root)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return one_error_line(done.stderr)


def nothing_ran_or_landed(project: Project, home: Path) -> None:
    assert not (home / "hook-ran").exists()
    found = [
        p
        for p in project.root.rglob("*")
        if p.name in ("post-commit", "h") or p.parts[-2:] == ("tests", ".git")
    ]
    assert found == []


@pytest.mark.parametrize("diff", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_patch_is_refused_before_anything_is_written(
    small_project: Project, tmp_path: Path, diff: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    small_project.write_series({"evil.patch": make_patch("Evil", P1_DIFF + diff)})
    line = hostile_run(small_project, home, "apply")
    assert "evil.patch" in line
    nothing_ran_or_landed(small_project, home)
    assert not small_project.checkout.exists()


def test_a_link_in_one_patch_and_a_write_in_the_next_are_refused(
    small_project: Project, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    link, hook = LINK_THEN_HOOK.split("    diff --git a/h/hooks/")
    project = applied(small_project)
    before = project.snapshot()
    project.write_series(
        {
            "0001-Change-line-four.patch": P1,
            "link.patch": make_patch("Link", link),
            "hook.patch": make_patch("Hook", "    diff --git a/h/hooks/" + hook),
        }
    )
    line = hostile_run(project, home, "apply")
    assert "link.patch" in line and "symlink" in line
    assert project.snapshot() == before
    nothing_ran_or_landed(project, home)


def test_git_refuses_a_write_beyond_a_symlink_already_in_the_tree(
    tmp_path: Path,
) -> None:
    """Whatever put the link there, no patch writes through it."""
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    tree.mkdir()
    outside.mkdir()
    (tree / "lib").symlink_to(outside)
    mail = tmp_path / "a.patch"
    mail.write_text(
        make_patch(
            "Add",
            """
            diff --git a/lib/x.txt b/lib/x.txt
            new file mode 100644
            --- /dev/null
            +++ b/lib/x.txt
            @@ -0,0 +1 @@
            +escaped
            """,
        )
    )
    patch = read_patch(SeriesEntry("a.patch", mail, 1))
    for fuzz in (False, True):
        with pytest.raises(ToolError, match="symlink"):
            apply_patch(tree, patch, "a.patch", allow_fuzz=fuzz)
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- item 7


def test_a_new_file_under_an_ignored_path_is_committed_and_refreshed(
    fake_project: Project,
) -> None:
    extra = make_patch(
        "Add a generated source",
        """
        diff --git a/vendor/llhttp/build/extra.c b/vendor/llhttp/build/extra.c
        new file mode 100644
        --- /dev/null
        +++ b/vendor/llhttp/build/extra.c
        @@ -0,0 +1 @@
        +/* extra */
        """,
    )
    project = fake_project
    project.write_series({"0001-Add-a-generated-source.patch": extra})
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    assert "vendor/llhttp/build/extra.c" in project.git("show", "--stat", "HEAD")
    assert project.git("status", "--porcelain") == ""
    done = project.run("refresh")
    assert done.returncode == 0, done.stderr
    patch = project.root / "patches" / "0001-Add-a-generated-source.patch"
    assert "+/* extra */" in patch.read_text()


# Found by hand: each is refused in one line (one_error_line splits on every
# character str.splitlines() breaks on, so a raw \r or \u2028 would show).
ODD_PATCHES = {
    "CR LF line ends": P1.replace("\n", "\r\n").encode(),
    "a NUL in the diff": P1.replace("+changed 4", "+chan\0ged 4").encode(),
    "a NUL in the subject": P1.replace("line four", "line\0four").encode(),
    "an empty file": b"",
    "a line separator in a path": P1.replace("lines.txt", "lines\u2028.txt").encode(),
}


@pytest.mark.parametrize("data", ODD_PATCHES.values(), ids=ODD_PATCHES)
def test_an_odd_patch_is_refused_in_one_line(
    small_project: Project, data: bytes
) -> None:
    small_project.write_series({"odd.patch": ""})
    (small_project.root / "patches" / "odd.patch").write_bytes(data)
    done = small_project.run("apply")
    assert done.returncode == 1
    assert "odd.patch" in one_error_line(done.stderr)
    assert len(done.stderr.splitlines()) == 1
    assert not small_project.checkout.exists()


def test_a_series_entry_that_reads_as_an_option_is_refused(
    small_project: Project,
) -> None:
    small_project.write_series({"a.patch": P1}, series="-p1\na.patch\n")
    done = small_project.run("apply")
    assert done.returncode == 1
    assert "series:1: '-p1'" in one_error_line(done.stderr)

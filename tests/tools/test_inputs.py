"""A byte that is not UTF-8 in an input is one line, not a traceback (issue 19).

Item 9: patches/series, upstream.toml, matrix.toml, a patch's message or
header, and a name on the command line.
"""

from __future__ import annotations

import shutil

import pytest

from tests.tools.throwaway import Project, line_patch, one_error_line

P1 = line_patch("Change line four", 4, "changed 4")


def refused(project: Project, *args: str, module: str = "tools.patchq") -> str:
    done = project.run(*args, module=module)
    assert done.returncode == 1, done.stdout
    return one_error_line(done.stderr)


def test_series(small_project: Project) -> None:
    small_project.write_series({"a.patch": P1})
    series = small_project.root / "patches" / "series"
    series.write_bytes(b"# caf\xe9\na.patch\n")
    line = refused(small_project, "apply")
    assert f"{series}:1: byte 0xe9 is not UTF-8" in line


def test_upstream_toml(small_project: Project) -> None:
    pin = small_project.pin_file
    pin.write_bytes(pin.read_bytes() + b"# \xff\n")
    line = refused(small_project, "apply")
    assert str(pin) in line and "0xff is not UTF-8" in line


def test_matrix_toml(small_project: Project) -> None:
    small_project.write_series({"a.patch": P1})
    assert small_project.run("apply").returncode == 0
    matrix = small_project.root / "matrix.toml"
    matrix.write_bytes(b'[sdists]\n"1.1" = "\xff"\n')
    line = refused(small_project, "--to", "1.1", module="tools.rebase")
    assert str(matrix) in line and "not UTF-8" in line


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Change line four\n", b"Change line f\xf6ur\n"),
        (b"---\n", b"Why: caf\xe9.\n---\n"),
    ],
    ids=["subject", "body"],
)
def test_a_patch_message(small_project: Project, old: bytes, new: bytes) -> None:
    small_project.write_series({"a.patch": P1})
    patch = small_project.root / "patches" / "a.patch"
    patch.write_bytes(patch.read_bytes().replace(old, new, 1))
    line = refused(small_project, "apply")
    assert str(patch) in line and "not UTF-8" in line


def test_a_version_on_the_command_line(small_project: Project) -> None:
    small_project.write_series({"a.patch": P1})
    assert small_project.run("apply").returncode == 0
    line = refused(small_project, "--to", "1.1\n$(id)", module="tools.rebase")
    assert "TO" in line and "PEP 440" in line


def test_a_non_utf8_file_in_the_tree_is_carried(small_project: Project) -> None:
    """Content is bytes, not text: only messages and our inputs must be UTF-8."""
    small_project.write_series({"a.patch": P1})
    assert small_project.run("apply").returncode == 0
    lines = small_project.checkout / "lines.txt"
    lines.write_bytes(lines.read_bytes().replace(b"line 9", b"caf\xe9 9"))
    small_project.git("commit", "-q", "-a", "-m", "Latin-1 line")
    done = small_project.run("refresh")
    assert done.returncode == 0, done.stderr
    tree = small_project.git("rev-parse", "HEAD^{tree}")
    shutil.rmtree(small_project.checkout)
    assert small_project.run("apply").returncode == 0
    assert small_project.git("rev-parse", "HEAD^{tree}") == tree

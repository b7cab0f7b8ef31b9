"""upstream.toml is checked where it is read and bound to its sdist (issue 19).

Item 4: no field of the pin reaches make, a shell or a path as anything
but itself. Item 5: the version is the one the archive's own PKG-INFO says.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tools.throwaway import (
    ROOT,
    Project,
    line_patch,
    make,
    one_error_line,
    pin_text,
)
from tools.project import ToolError, load_pin, series_version, version_key

P1 = line_patch("Change line four", 4, "changed 4")
SHA = "0" * 64


def with_pin(root: Path, text: str) -> Path:
    """A project of the Makefile and tools, with this upstream.toml."""
    root.mkdir()
    shutil.copy(ROOT / "Makefile", root / "Makefile")
    shutil.copytree(
        ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "upstream.toml").write_text(text)
    return root


def edited(field: str, value: str) -> str:
    """pin_text with one field's line replaced (value as TOML writes it)."""
    lines = pin_text("1.0", SHA).splitlines(keepends=True)
    return "".join(
        f"{field} = {value}\n" if line.startswith(f"{field} = ") else line
        for line in lines
    )


HOSTILE_FIELDS = {
    "a make function in version": ("version", '"1.0$(shell touch {marker})"'),
    "a shell command in version": ("version", '"1.0`touch {marker}`"'),
    "a newline in version": ("version", '"1.0\\nX := $(shell touch {marker})"'),
    "a make function in label": ("label", '"t$(shell touch {marker})"'),
    "a path in sdist": ("sdist", '"../../../{marker}.tar.gz"'),
    "an absolute sdist": ("sdist", '"/tmp/aiohttp-1.0.tar.gz"'),
    "an option for a name": ("name", '"-r/etc/passwd"'),
    "a sha256 too short": ("sha256", '"abc"'),
    "a number for a version": ("version", "1.0"),
}


@pytest.mark.parametrize(
    ("field", "value"), HOSTILE_FIELDS.values(), ids=HOSTILE_FIELDS
)
def test_a_hostile_pin_field_is_refused_and_runs_nothing(
    tmp_path: Path, field: str, value: str
) -> None:
    marker = tmp_path / "ran"
    root = with_pin(tmp_path / "proj", edited(field, value.format(marker=marker)))
    done = make("-n", "unapply", cwd=root)
    assert not marker.exists()
    assert done.returncode != 0
    line = one_error_line(done.stderr)
    assert "upstream.toml" in line and field in line.replace("project name", "name")
    assert not (root / "build" / "project-main.mk").exists()


def test_a_good_pin_gives_make_its_values(tmp_path: Path) -> None:
    root = with_pin(tmp_path / "proj", pin_text("3.11.0rc1", SHA))
    done = make("-n", "unapply", cwd=root)
    assert done.returncode == 0, done.stderr
    text = (root / "build" / "project-main.mk").read_text()
    assert "UPSTREAM_TAG := v3.11.0rc1\n" in text
    assert "SERIES_VERSION := 3.11.0rc1+test\n" in text


def test_load_pin_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "upstream.toml"
    path.write_text(edited("sdist", '"sub/aiohttp-1.0.tar.gz"'))
    with pytest.raises(ToolError, match=r"upstream.toml.*sdist 'sub/aiohttp"):
        load_pin(path)
    path.write_text(edited("label", '"a b"'))
    with pytest.raises(ToolError, match="series label 'a b'"):
        series_version(path)


def test_versions_sort_as_pep_440_orders_them() -> None:
    ordered = ["3.9", "3.10.9", "3.10.10", "3.11.0.dev1", "3.11.0a1", "3.11.0b2"]
    ordered += ["3.11.0rc1", "3.11", "3.11.0.post1", "3.11.1"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("3.11") == version_key("3.11.0")
    with pytest.raises(ToolError, match="PEP 440"):
        version_key("3.11-final")


# ---------------------------------------------------------------- item 5


def test_a_version_edited_alone_is_refused_by_apply(small_project: Project) -> None:
    project = small_project
    project.write_series({"a.patch": P1})
    assert project.run("apply").returncode == 0
    before = project.snapshot()
    pin = project.pin_file
    pin.write_text(pin.read_text().replace('version = "1.0"', 'version = "1.1"'))
    done = project.run("apply")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "PKG-INFO" in line and "aiohttp 1.0" in line and "1.1" in line
    assert project.snapshot() == before


def test_a_version_edited_alone_is_refused_by_rebase(small_project: Project) -> None:
    project = small_project
    project.write_series({"a.patch": P1})
    assert project.run("apply").returncode == 0
    before = project.snapshot()
    pin = project.pin_file
    pin.write_text(pin.read_text().replace('version = "1.0"', 'version = "1.1"'))
    done = project.run(module="tools.rebase")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "PKG-INFO" in line and "1.1" in line
    assert project.snapshot() == before
    assert "v1.1" not in project.git("tag")

"""SERIES picks the series every target acts on: main by default, forward
on request, and nothing else; the name never reaches a shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.throwaway import front_door, pin_text


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The Makefile and tools, with a pin for each series."""
    root = front_door(tmp_path / "proj")
    (root / "forward").mkdir()
    (root / "forward" / "upstream.toml").write_text(pin_text("2.0", "1" * 64))
    return root


def make(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-n", *args], cwd=root, capture_output=True, text=True
    )


def test_each_series_has_its_own_checkout_and_pin(project: Path) -> None:
    main = make(project, "test-upstream-selected")
    forward = make(project, "test-upstream-selected", "SERIES=forward")
    assert main.returncode == 0 and forward.returncode == 0, (
        main.stderr + forward.stderr
    )
    assert 'cd "build/aiohttp"' in main.stdout
    assert 'cd "build/forward/aiohttp"' in forward.stdout
    assert "forward/upstream-deselect.txt" in forward.stdout
    assert (
        "UPSTREAM_VERSION := 2.0" in (project / "build/project-forward.mk").read_text()
    )
    assert "UPSTREAM_VERSION := 1.0" in (project / "build/project-main.mk").read_text()


@pytest.mark.parametrize(
    "name", ["other", "main forward", "$(shell touch pwned)", "`touch pwned`", ""]
)
def test_any_other_name_is_refused_and_runs_nothing(project: Path, name: str) -> None:
    done = make(project, "apply", f"SERIES={name}")
    assert done.returncode != 0
    assert "SERIES must be main or forward" in done.stderr
    assert not (project / "pwned").exists()
    assert (
        not list((project / "build").glob("project-*.mk"))
        if (project / "build").exists()
        else True
    )


def test_the_tools_refuse_an_unknown_series_in_one_line(project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import tools.project"],
        cwd=project,
        capture_output=True,
        text=True,
        env={"AIOHTTP_SERIES": "../x"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: AIOHTTP_SERIES (make's SERIES) is '../x'; name a series: "
        "main or forward"
    ]

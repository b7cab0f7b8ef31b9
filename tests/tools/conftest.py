"""Fixtures for the tooling tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.tools.throwaway import (
    FAKE_VERSION,
    ROOT,
    Project,
    fake_aiohttp,
    small_files,
)
from tools import sdist
from tools.project import load_pin


def copy_tools(root: Path) -> None:
    shutil.copytree(
        ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )


@pytest.fixture
def fake_project(tmp_path: Path) -> Project:
    """A throwaway project pinned to a small aiohttp-like sdist (FAKE_VERSION)."""
    root = tmp_path / "proj"
    copy_tools(root)
    proj = Project(root)
    proj.pin(FAKE_VERSION, fake_aiohttp(FAKE_VERSION))
    proj.write_series({})
    return proj


# The two fixtures below need the real pinned sdist (downloaded once into
# build/cache): only for tests of the real series, not of the tools.


@pytest.fixture(scope="session")
def cached_sdist() -> Path:
    return sdist.fetch(load_pin())


@pytest.fixture
def project(tmp_path: Path, cached_sdist: Path) -> Project:
    """A throwaway project with the real pin and sdist, and an empty series."""
    root = tmp_path / "proj"
    copy_tools(root)
    shutil.copy(ROOT / "upstream.toml", root / "upstream.toml")
    cache = root / "build" / "cache"
    cache.mkdir(parents=True)
    os.link(cached_sdist, cache / cached_sdist.name)
    proj = Project(root)
    proj.write_series({})
    return proj


@pytest.fixture
def small_project(tmp_path: Path) -> Project:
    """A throwaway project pinned to a small sdist (aiohttp-1.0, lines.txt)."""
    root = tmp_path / "small"
    copy_tools(root)
    proj = Project(root)
    proj.pin("1.0", small_files())
    proj.write_series({})
    return proj

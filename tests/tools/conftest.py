"""Fixtures for the tooling tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.tools.throwaway import ROOT, Project, small_files
from tools import sdist


@pytest.fixture(scope="session")
def cached_sdist() -> Path:
    return sdist.fetch(sdist.load_pin())


@pytest.fixture
def project(tmp_path: Path, cached_sdist: Path) -> Project:
    root = tmp_path / "proj"
    shutil.copytree(
        ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
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
    shutil.copytree(
        ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    proj = Project(root)
    proj.pin("1.0", small_files())
    proj.write_series({})
    return proj

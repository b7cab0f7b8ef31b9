"""The aiohttp the tests import is the patched checkout's compiled build
(run after `make apply` and `make venv`)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import aiohttp

from tools.project import CHECKOUT, load_pin, require_checkout


def test_aiohttp_is_the_pinned_version_with_c_extensions() -> None:
    compiled = importlib.import_module("aiohttp._http_parser")

    assert aiohttp.__version__ == load_pin().version
    assert compiled.__file__ is not None
    assert Path(compiled.__file__).suffix == ".so"


def test_aiohttp_files_are_the_checkouts() -> None:
    installed = Path(aiohttp.__file__).parent
    source = require_checkout(CHECKOUT) / "aiohttp"
    assert installed.resolve() != source.resolve()
    assert Path(sys.prefix).resolve() in installed.resolve().parents
    mine = {p.name: p.read_bytes() for p in installed.glob("*.py")}
    theirs = {p.name: p.read_bytes() for p in source.glob("*.py")}
    assert mine and mine == theirs

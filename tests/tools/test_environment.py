"""The aiohttp the tests import is the patched checkout's compiled build, and
no dependency can swap it for another release."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import aiohttp

from tools import sdist

ROOT = sdist.ROOT
REQUIREMENTS = ROOT / "requirements"


def test_aiohttp_is_the_pinned_version_with_c_extensions() -> None:
    compiled = importlib.import_module("aiohttp._http_parser")

    assert aiohttp.__version__ == sdist.load_pin().version
    assert compiled.__file__ is not None
    assert Path(compiled.__file__).suffix == ".so"


def test_aiohttp_files_are_the_checkouts() -> None:
    installed = Path(aiohttp.__file__).parent
    source = ROOT / "build" / "aiohttp" / "aiohttp"
    assert installed.resolve() != source.resolve()
    assert Path(sys.prefix).resolve() in installed.resolve().parents
    mine = {p.name: p.read_bytes() for p in installed.glob("*.py")}
    theirs = {p.name: p.read_bytes() for p in source.glob("*.py")}
    assert mine == theirs


def test_installed_set_is_consistent() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


def test_every_requirement_is_pinned_exactly_and_aiohttp_only_by_constraint() -> None:
    line_re = re.compile(r"^[A-Za-z0-9._-]+==[^=\s;]+(\s*;.*)?$")
    for path in sorted(REQUIREMENTS.glob("*.txt")):
        for line in path.read_text().splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            assert line_re.match(line), f"{path.name}: {line!r} is not an exact pin"
            name = line.split("==")[0].lower()
            if name == "aiohttp":
                assert path.name == "constraints.txt"
                assert line == f"aiohttp=={sdist.load_pin().version}"

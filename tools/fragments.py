"""Changelog drafts from towncrier fragments: aiohttp's and this project's.

aiohttp's draft uses aiohttp's own [tool.towncrier] config from the
checkout. That config names a template, CHANGES/.TEMPLATE.rst, which the
sdist does not ship, so towncrier's default RST template stands in for it.
`make changelog` (tools.changelog) prints both; tools.pr puts aiohttp's in
the cover letter.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import towncrier

from tools.project import (
    CHECKOUT,
    ROOT,
    SeriesVersion,
    ToolError,
    series_version,
)


def _draft(directory: Path, config: Path, version: SeriesVersion, name: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "towncrier",
            "build",
            "--draft",
            "--config",
            str(config),
            "--dir",
            str(directory),
            "--version",
            str(version),
            "--name",
            name,
            "--date",
            "unreleased",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise ToolError(f"{directory}: towncrier failed:\n{done.stderr}")
    return done.stdout


def aiohttp_draft(tree: Path = CHECKOUT, version: SeriesVersion | None = None) -> str:
    """aiohttp's changelog draft of the fragments the series adds."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(tree / "pyproject.toml", work / "pyproject.toml")
        if (tree / "CHANGES").is_dir():
            shutil.copytree(tree / "CHANGES", work / "CHANGES")
        (work / "CHANGES").mkdir(exist_ok=True)
        default = Path(towncrier.__file__).parent / "templates" / "default.rst"
        shutil.copy(default, work / "CHANGES" / ".TEMPLATE.rst")
        version = version or series_version()
        return _draft(work, work / "pyproject.toml", version, "aiohttp")


def our_draft(root: Path = ROOT, version: SeriesVersion | None = None) -> str:
    """This project's draft: CHANGES/ under root, its pyproject.toml's config."""
    return _draft(
        root,
        root / "pyproject.toml",
        version or series_version(),
        "aiohttp connect-timeout series",
    )

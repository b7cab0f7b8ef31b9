"""Throwaway projects in a temp dir, for the tooling tests.

A throwaway project is a copy of tools/ and upstream.toml with its own
patches/ and build/; the cached sdist is linked in, so no test downloads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools import sdist

ROOT = sdist.ROOT


def make_patch(subject: str, diff: str, *, body: str = "") -> str:
    """A format-patch style mail, as `make refresh` writes them.

    The diff may be indented; textwrap.dedent is not used because it would
    turn the single-space context lines into empty ones.
    """
    lines = diff.rstrip().lstrip("\n").splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Test Author <test@localhost>\n"
        "Date: Sat, 1 Jan 2000 00:00:00 +0000\n"
        f"Subject: [PATCH] {subject}\n\n"
        + (f"{body}\n" if body else "")
        + "---\n"
        + "".join(line[indent:] + "\n" for line in lines)
    )


VERSION_PATCH = make_patch(
    "Mark the version",
    """
    diff --git a/aiohttp/__init__.py b/aiohttp/__init__.py
    --- a/aiohttp/__init__.py
    +++ b/aiohttp/__init__.py
    @@ -1,3 +1,3 @@
    -__version__ = "3.10.10"
    +__version__ = "3.10.10+test"
     
     from typing import TYPE_CHECKING, Tuple
    """,
    body="Why: to see it in the checkout.\n\nForwarded: not-needed",
)

LOG_PATCH = make_patch(
    "Rename the access logger",
    """
    diff --git a/aiohttp/log.py b/aiohttp/log.py
    --- a/aiohttp/log.py
    +++ b/aiohttp/log.py
    @@ -1,5 +1,5 @@
     import logging
     
    -access_logger = logging.getLogger("aiohttp.access")
    +access_logger = logging.getLogger("aiohttp.access2")
     client_logger = logging.getLogger("aiohttp.client")
     internal_logger = logging.getLogger("aiohttp.internal")
    """,
)


@dataclass
class Project:
    root: Path

    @property
    def checkout(self) -> Path:
        return self.root / "build" / "aiohttp"

    def write_series(self, patches: dict[str, str], series: str | None = None) -> None:
        pdir = self.root / "patches"
        pdir.mkdir(exist_ok=True)
        for name, text in patches.items():
            (pdir / name).write_text(text)
        lines = series if series is not None else "".join(f"{n}\n" for n in patches)
        (pdir / "series").write_text(lines)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.patchq", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
        )

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.checkout), *args],
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@localhost",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@localhost",
            },
        ).stdout

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the checkout, .git included: to prove nothing changed."""
        return {
            str(p.relative_to(self.checkout)): p.read_bytes()
            for p in sorted(self.checkout.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }

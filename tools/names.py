"""What the tools accept from an input, and the one error type.

A pin, a series entry or a name on the command line is untrusted: each
kind of name has one pattern here (NAMES), checked once where it is read
(checked_name), so that none reaches a path, make or a shell as anything
but itself. Text files are read as UTF-8 or refused in one line
(read_utf8). A path is used only if it stays inside the project, symlinks
followed (within). The floor under tools/project.py: it imports no tool.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path


class ToolError(Exception):
    """A problem the user can fix; the message says where and what to do."""


# A PEP 440 public version: release, then an optional pre-, post- and
# dev-release part, in normal form (no epoch, no local label: both would end
# up in tags and file names).
VERSION = (
    r"(?P<release>[0-9]+(?:\.[0-9]+)*)(?:(?P<pre>a|b|rc)(?P<pre_n>[0-9]+))?"
    r"(?:\.post(?P<post>[0-9]+))?(?:\.dev(?P<dev>[0-9]+))?"
)
# Every name the tools take from a file or a command line, and what it may
# be. Checked once, where it is read (checked_name), so that none reaches a
# path, make or a shell as anything but itself.
NAMES = {
    "project name": (
        r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?",
        "a PyPI project name such as aiohttp",
    ),
    "version": (VERSION, "a PEP 440 release such as 3.10.10 or 3.11.0rc1"),
    "sdist": (
        r"[A-Za-z0-9][A-Za-z0-9._+-]*\.tar\.gz",
        "a bare file name such as aiohttp-3.10.10.tar.gz",
    ),
    "sha256": (r"[0-9A-Fa-f]{64}", "64 hex digits; copy it from `sha256sum`"),
    "series label": (
        r"[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*",
        "a PEP 440 local label such as connect.timeout.1",
    ),
}


def checked_name(kind: str, value: object, where: str | Path) -> str:
    """value, if it is a `kind` of NAMES; else one error saying what it must be."""
    pattern, meaning = NAMES[kind]
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ToolError(f"{where}: the {kind} {value!r} is not {meaning}")
    return value


def read_utf8(path: Path) -> str:
    """path's text; a byte that is not UTF-8 is one error naming its line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ToolError(
            f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8; "
            "save the file as UTF-8"
        ) from None


VersionKey = tuple[tuple[int, ...], int, int, int, int]
PRE_PHASES = ("a", "b", "rc")


def version_key(version: str) -> VersionKey:
    """Sort key of a PEP 440 release: 3.10.9 < 3.10.10 < 3.11.0rc1 < 3.11.0."""
    m = re.fullmatch(VERSION, version)
    if m is None:
        raise ToolError(f"{version!r} is not {NAMES['version'][1]}")
    release = tuple(int(part) for part in m["release"].split("."))
    while len(release) > 1 and release[-1] == 0:  # 3.11 == 3.11.0
        release = release[:-1]
    phase = PRE_PHASES.index(m["pre"]) if m["pre"] else len(PRE_PHASES)
    if m["pre"] is None and m["post"] is None and m["dev"] is not None:
        phase = -1  # 3.11.0.dev1 comes before 3.11.0a1
    post = int(m["post"]) if m["post"] is not None else -1
    dev = int(m["dev"]) if m["dev"] is not None else sys.maxsize
    return release, phase, int(m["pre_n"] or 0), post, dev


# What a value in build/project-<series>.mk may hold: nothing make or a shell reads
# as more than text ($, quotes, spaces, #, backquotes, newlines).
MAKE_VALUE = re.compile(r"[A-Za-z0-9._+/-]+")


def within(root: Path, *paths: Path) -> None:
    """Refuse a path that leads out of root: one named outside it, or one
    a symlink inside it sends elsewhere. The tools read and write only
    inside the project, whatever a link or an input says."""
    top = os.path.realpath(root)
    for path in paths:
        real = os.path.realpath(path)
        if real == top or real.startswith(top + os.sep):
            continue
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        parts = [] if rel.startswith("..") else Path(rel).parts
        links = [
            root.joinpath(*parts[:n])
            for n in range(1, len(parts) + 1)
            if root.joinpath(*parts[:n]).is_symlink()
        ]
        if links:
            raise ToolError(
                f"{links[0]}: a symlink to {os.readlink(links[0])}, outside "
                f"{root}; the tools read and write only inside it. Put a real "
                "directory or file there, then run the command again."
            )
        raise ToolError(f"{path}: outside {root}, where the tools stay")

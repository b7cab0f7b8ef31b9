"""What the tools need from Python 3.11+, on the 3.9 and 3.10 a packager has.

`make apply` runs on the system Python before any venv exists, so nothing
here may need a third-party package:

- `tomllib`: the standard library's where it exists (3.11+), else a small
  reader of the TOML this project writes (tables, arrays of tables, strings,
  integers, floats, booleans, arrays, inline tables). It refuses anything
  else with TOMLDecodeError; tests/tools/test_compat.py checks it against
  the real tomllib on every TOML file in the repository.
- `extract_tar`: tarfile's "data" filter where it exists (3.9.17+,
  3.10.12+, 3.11.4+, 3.12+); else the same refusals done by hand. Debian
  12's /usr/bin/python3 is 3.11.2, which has no filter.
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["TOMLDecodeError", "extract_tar", "toml_loads", "tomllib"]


class TOMLDecodeError(ValueError):
    """The text is not TOML this reader understands."""


BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
NUMBER = re.compile(r"[+-]?(\d[\d_]*)(\.\d[\d_]*)?([eE][+-]?\d[\d_]*)?")
ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


class _Reader:
    def __init__(self, text: str) -> None:
        self.s = text.replace("\r\n", "\n")
        self.i = 0
        self.defined: set[int] = set()  # ids of tables given a [header]

    def fail(self, what: str) -> TOMLDecodeError:
        line = self.s.count("\n", 0, self.i) + 1
        return TOMLDecodeError(f"{what} (at line {line})")

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def expect(self, token: str) -> None:
        if self.peek(len(token)) != token:
            raise self.fail(f"expected {token!r}")
        self.i += len(token)

    def blank(self, newlines: bool = False) -> None:
        """Skip spaces and comments (and newlines, inside arrays)."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            else:
                break

    def parse(self) -> dict[str, Any]:
        root: dict[str, Any] = {}
        current = root
        while True:
            self.blank(newlines=True)
            if self.i >= len(self.s):
                return root
            if self.peek(2) == "[[":
                self.i += 2
                keys = self.key()
                self.expect("]]")
                parent = self.walk(root, keys[:-1])
                tables = parent.setdefault(keys[-1], [])
                if not isinstance(tables, list):
                    raise self.fail(f"{'.'.join(keys)} is not an array of tables")
                current = {}
                tables.append(current)
            elif self.peek() == "[":
                self.i += 1
                keys = self.key()
                self.expect("]")
                parent = self.walk(root, keys[:-1])
                current = parent.setdefault(keys[-1], {})
                if not isinstance(current, dict) or id(current) in self.defined:
                    raise self.fail(f"table {'.'.join(keys)} is defined twice")
            else:
                self.assign(current, self.key(), self.pair_value())
            self.defined.add(id(current))
            self.blank()
            if self.i < len(self.s) and self.s[self.i] != "\n":
                raise self.fail("expected the end of the line")

    def walk(self, table: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        for k in keys:
            table = table.setdefault(k, {})
            if isinstance(table, list):
                table = table[-1]
            if not isinstance(table, dict):
                raise self.fail(f"{k} is not a table")
        return table

    def assign(self, table: dict[str, Any], keys: list[str], value: Any) -> None:
        table = self.walk(table, keys[:-1])
        if keys[-1] in table:
            raise self.fail(f"{'.'.join(keys)} is defined twice")
        table[keys[-1]] = value

    def key(self) -> list[str]:
        keys = []
        while True:
            self.blank()
            if self.peek() == '"':
                keys.append(self.basic_string())
            elif self.peek() == "'":
                keys.append(self.literal_string())
            else:
                m = BARE_KEY.match(self.s, self.i)
                if not m:
                    raise self.fail("expected a key")
                keys.append(m[0])
                self.i = m.end()
            self.blank()
            if self.peek() != ".":
                return keys
            self.i += 1

    def pair_value(self) -> Any:
        self.expect("=")
        self.blank()
        return self.value()

    def value(self) -> Any:
        c = self.peek()
        if self.peek(3) in ('"""', "'''"):
            raise self.fail("multi-line strings are not supported")
        if c == '"':
            return self.basic_string()
        if c == "'":
            return self.literal_string()
        if c == "[":
            return self.array()
        if c == "{":
            return self.inline_table()
        for word, val in (("true", True), ("false", False)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return val
        m = NUMBER.match(self.s, self.i)
        if not m or self.s[m.end() : m.end() + 1] not in ("", *" \t\n,]}#"):
            raise self.fail("unsupported value (dates, hex, inf/nan are not read)")
        self.i = m.end()
        text = m[0].replace("_", "")
        return float(text) if m[2] or m[3] else int(text)

    def basic_string(self) -> str:
        self.expect('"')
        out: list[str] = []
        while True:
            if self.i >= len(self.s) or self.s[self.i] == "\n":
                raise self.fail("unterminated string")
            c = self.s[self.i]
            self.i += 1
            if c == '"':
                return "".join(out)
            if c == "\\":
                e = self.peek()
                self.i += 1
                if e in ESCAPES:
                    out.append(ESCAPES[e])
                elif e in ("u", "U"):
                    n = 4 if e == "u" else 8
                    digits = self.s[self.i : self.i + n]
                    if not re.fullmatch(f"[0-9A-Fa-f]{{{n}}}", digits):
                        raise self.fail("bad unicode escape")
                    out.append(chr(int(digits, 16)))
                    self.i += n
                else:
                    raise self.fail(f"bad escape \\{e}")
            elif ord(c) < 0x20 and c != "\t" or c == "\x7f":
                raise self.fail("control character in a string")
            else:
                out.append(c)

    def literal_string(self) -> str:
        self.expect("'")
        end = self.s.find("'", self.i)
        if end < 0 or "\n" in self.s[self.i : end]:
            raise self.fail("unterminated string")
        text, self.i = self.s[self.i : end], end + 1
        return text

    def array(self) -> list[Any]:
        self.expect("[")
        items: list[Any] = []
        while True:
            self.blank(newlines=True)
            if self.peek() == "]":
                self.i += 1
                return items
            items.append(self.value())
            self.blank(newlines=True)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "]":
                raise self.fail("expected ',' or ']' in an array")

    def inline_table(self) -> dict[str, Any]:
        self.expect("{")
        table: dict[str, Any] = {}
        self.blank()
        if self.peek() == "}":
            self.i += 1
            return table
        while True:
            self.assign(table, self.key(), self.pair_value())
            self.blank()
            if self.peek() == "}":
                self.i += 1
                return table
            self.expect(",")


def toml_loads(text: str) -> dict[str, Any]:
    """The fallback reader (tomllib.loads where it is missing)."""
    return _Reader(text).parse()


class _FallbackTomllib:
    """Stands in for the tomllib module: loads() and TOMLDecodeError."""

    TOMLDecodeError = TOMLDecodeError
    loads = staticmethod(toml_loads)


try:
    import tomllib  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Python < 3.11
    tomllib = _FallbackTomllib()  # type: ignore[assignment]


# ---------------------------------------------------------------- tar


class UnsafeArchive(Exception):
    """A member that would land outside the destination, or is a device."""


def _inside(dest: Path, rel: str) -> bool:
    path = os.path.normpath(os.path.join(dest, rel))
    return path == str(dest) or path.startswith(str(dest) + os.sep)


def _checked(member: tarfile.TarInfo, dest: Path) -> tarfile.TarInfo:
    """What the "data" filter does, for Pythons without it."""
    name = member.name
    if PurePosixPath(name).is_absolute() or not _inside(dest, name):
        raise UnsafeArchive(f"member {name!r} would be written outside {dest}")
    if member.issym():
        if os.path.isabs(member.linkname) or not _inside(
            dest, os.path.join(os.path.dirname(name), member.linkname)
        ):
            raise UnsafeArchive(f"symlink {name!r} points outside the archive")
    elif member.islnk():
        if os.path.isabs(member.linkname) or not _inside(dest, member.linkname):
            raise UnsafeArchive(f"hard link {name!r} points outside the archive")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"member {name!r} is a device or fifo")
    member.uid, member.gid, member.uname, member.gname = -1, -1, "", ""
    mode = member.mode & 0o755  # no setuid/setgid/sticky, no group/other write
    if member.isfile():
        mode |= 0o600
        if not mode & 0o100:
            mode &= ~0o111
    member.mode = mode
    return member


def extract_tar(
    tar: tarfile.TarFile, dest: Path, *, data_filter: bool | None = None
) -> None:
    """Extract every member under dest; refuse members that escape it.

    Never chowns to the archive's owners, so a root unpack gives files
    owned by the user running it. data_filter=False forces the fallback
    (for tests on a Python that has the filter).
    """
    if data_filter is None:
        data_filter = hasattr(tarfile, "data_filter")
    if data_filter:
        try:
            tar.extractall(dest, filter="data")  # type: ignore[call-arg,unused-ignore]
        except tarfile.FilterError as exc:  # type: ignore[attr-defined,unused-ignore]
            raise UnsafeArchive(str(exc)) from exc
        return
    dest = Path(os.path.abspath(dest))
    members = [_checked(m, dest) for m in tar.getmembers()]
    # members are checked, so no filter is wanted; say so where Python
    # would otherwise warn that its default changes in 3.14
    extra = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
    tar.chown = lambda *args, **kwargs: None  # type: ignore[method-assign]
    tar.extractall(dest, members=members, **extra)  # type: ignore[arg-type]

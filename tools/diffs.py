"""A patch's diff, read as strictly as git reads it, before anything applies it.

Accepted is what `git format-patch` writes: a `diff --git` section per
file, git's extended header lines, ---/+++ lines that agree with the
section's names, and hunks whose bodies match their line counts. Names are
unquoted as git quotes them (`"b/\\056git/config"` is b/.git/config).

Refused: a path that leaves the tree or enters a .git directory at any
depth; a symlink or a submodule (a link in the tree could lead a later
write out of it); a binary change; a rename or copy (`make refresh`
writes neither); and any line outside this grammar, because another tool
could read it as a diff of its own (GNU patch runs `ed` scripts). Only the
sections parsed here are handed on (ParsedDiff.text), so what git checks
is all that any tool applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tools.project import ToolError

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
GIT_HEADER = "diff --git "
MODE_RE = re.compile(r"^(old mode|new mode|deleted file mode|new file mode) (\d+)$")
INDEX_RE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+(?: (\d+))?$")
REGULAR_MODES = ("100644", "100755")
NOT_REGULAR = {"120000": "a symlink", "160000": "a submodule"}
MOVES = tuple(
    f"{what} " for what in ("rename from", "rename to", "copy from", "copy to")
) + ("similarity index ", "dissimilarity index ")
# Lines GNU patch or git would take for the start of a diff of their own.
DIFF_LIKE = re.compile(
    r"^(?:--- |\+\+\+ |@@ |\*\*\* |Index: |diff |Binary files |GIT binary patch"
    r"|\d+(?:,\d+)?[acd]\d*(?:,\d+)?$)"
)
SIGNATURE = "-- "  # format-patch's signature separator: the diff ends here
C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13}


@dataclass
class FileDiff:
    path: str  # the path inside the tree, after -p1 (the old one when deleted)
    hunks: list[str] = field(default_factory=list)  # the @@ header lines


@dataclass(frozen=True)
class ParsedDiff:
    text: str  # the `diff --git` sections only: what is handed to an applier
    files: list[FileDiff]


def unquote(name: str, where: str) -> str:
    """A name as git wrote it, C-quoted or not, as the path it stands for."""
    if not name.startswith('"'):
        return name
    if len(name) < 2 or not name.endswith('"'):
        raise ToolError(f"{where}: the quoted name {name!r} has no closing quote")
    out = bytearray()
    body = name[1:-1]
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in C_ESCAPES:
            out.append(C_ESCAPES[nxt])
            i += 2
        elif nxt in ('"', "\\"):
            out += nxt.encode()
            i += 2
        elif re.fullmatch(r"[0-3][0-7]{2}", body[i + 1 : i + 4]):
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        else:
            raise ToolError(f"{where}: the quoted name {name!r} has a bad escape")
    return out.decode("utf-8", "surrogateescape")


def _split_quoted(rest: str, where: str) -> tuple[str, str]:
    """The two names of a `diff --git` line, either or both quoted."""
    if rest.startswith('"'):
        end = re.match(r'"(?:[^"\\]|\\.)*"', rest)
        if end is None or rest[end.end() : end.end() + 1] != " ":
            raise ToolError(f"{where}: cannot read the names in {rest!r}")
        return rest[: end.end()], rest[end.end() + 1 :]
    if rest.endswith('"') and ' "' in rest:
        first, _, second = rest.partition(' "')
        return first, '"' + second
    # unquoted, so (no rename) the same name twice: "a/X b/X"
    half = (len(rest) - 5) // 2
    name = rest[2 : 2 + half]
    if rest != f"a/{name} b/{name}":
        raise ToolError(
            f"{where}: `diff --git {rest!r}` names two different files; renames "
            "are not carried (make refresh writes a delete and an add)"
        )
    return f"a/{name}", f"b/{name}"


def tree_path(raw: str, prefix: str, where: str) -> str:
    """The path inside the tree that a/ or b/ `raw` names; refuse any other."""
    name = unquote(raw, where)
    if not name.startswith(prefix):
        raise ToolError(f"{where}: path {name!r} has no {prefix} prefix (-p1)")
    path = name[len(prefix) :]
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ToolError(
            f"{where}: touches {name!r}, which is outside the tree. "
            "Fix or remove this patch."
        )
    if any(p.lower().rstrip(". ") == ".git" or p.lower() == "git~1" for p in parts):
        raise ToolError(
            f"{where}: touches {name!r}, inside a .git directory, which no "
            "patch may change. Fix or remove this patch."
        )
    if not path.isprintable():  # a control character, a line separator...
        raise ToolError(
            f"{where}: the path {name!r} holds a character that is not printable"
        )
    return path


def _file_name(raw: str, prefix: str, where: str) -> str | None:
    """The tree path of a ---/+++ name; None for /dev/null."""
    name, _, rest = raw.partition("\t")  # git ends a name with a space by a tab
    if rest:
        raise ToolError(f"{where}: unexpected text after the name in {raw!r}")
    return None if name == "/dev/null" else tree_path(name, prefix, where)


def _count_hunk(
    lines: list[str], i: int, want_old: int, want_new: int
) -> tuple[int, int, int]:
    """Count a hunk body from line i; return the next index and the counts."""
    old = new = 0
    while i < len(lines) and (old < want_old or new < want_new):
        tag = lines[i][:1]
        if tag in (" ", ""):  # an empty line is an empty context line to both
            old, new = old + 1, new + 1
        elif tag == "-":
            old += 1
        elif tag == "+":
            new += 1
        elif tag != "\\":
            break
        i += 1
    while i < len(lines) and lines[i].startswith("\\"):  # "\ No newline at end"
        i += 1
    return i, old, new


def _headers(lines: list[str], i: int, path: str, where: str) -> tuple[int, set[str]]:
    """The extended header lines of a section from line i; which kinds."""
    kinds: set[str] = set()
    while i < len(lines):
        line = lines[i]
        mode = MODE_RE.match(line)
        index = INDEX_RE.match(line)
        if mode or index:
            value = mode[2] if mode else index[1] if index else None
            if value is not None and value not in REGULAR_MODES:
                what = NOT_REGULAR.get(value, f"the file mode {value}")
                raise ToolError(
                    f"{where}: makes {path} {what}; the series carries regular "
                    "files only. Remove that change from the patch."
                )
            if mode:
                kinds.add(mode[1])
        elif line.startswith(MOVES):
            raise ToolError(
                f"{where}: renames or copies {path}; the series carries no "
                "renames (make refresh writes a delete and an add). Regenerate "
                "the patch with --no-renames."
            )
        elif line.startswith(("Binary files ", "GIT binary patch")):
            raise ToolError(
                f"{where}: changes the binary file {path}, which quilt and "
                "patch cannot apply; the series carries text changes only. "
                "Remove that change from the patch."
            )
        else:
            break
        i += 1
    return i, kinds


def _hunks(
    lines: list[str], i: int, current: FileDiff, where: str
) -> tuple[int, list[str]]:
    hunks: list[str] = []
    while i < len(lines) and lines[i].startswith("@@"):
        line = lines[i]
        match = HUNK_RE.match(line)
        if match is None:
            raise ToolError(f"{where}: cannot read the hunk header {line!r}")
        hunks.append(line)
        want_old = int(match[2] if match[2] is not None else 1)
        want_new = int(match[4] if match[4] is not None else 1)
        i, old, new = _count_hunk(lines, i + 1, want_old, want_new)
        if (old, new) != (want_old, want_new):
            raise ToolError(
                f"{where}: hunk #{len(hunks)} of {current.path} "
                f"({line.rstrip()}) is malformed: its header promises {want_old} old "
                f"and {want_new} new lines, the body has {old} and {new}."
            )
    return i, hunks


def _section(lines: list[str], i: int, where: str) -> tuple[int, FileDiff]:
    """One `diff --git` section from line i: its end and what it changes."""
    a, b = _split_quoted(lines[i][len(GIT_HEADER) :], where)
    old, new = tree_path(a, "a/", where), tree_path(b, "b/", where)
    if old != new:
        raise ToolError(
            f"{where}: {lines[i]!r} names two different files; renames are not "
            "carried (make refresh writes a delete and an add)"
        )
    current = FileDiff(new)
    i, kinds = _headers(lines, i + 1, new, where)
    if i < len(lines) and lines[i].startswith("--- "):
        if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
            raise ToolError(f"{where}: {new}: a --- line without its +++ line")
        before = _file_name(lines[i][4:], "a/", where)
        after = _file_name(lines[i + 1][4:], "b/", where)
        want_before = None if "new file mode" in kinds else new
        want_after = None if "deleted file mode" in kinds else new
        if (before, after) != (want_before, want_after):
            raise ToolError(
                f"{where}: the ---/+++ names of {new} disagree with its "
                "`diff --git` line; regenerate the patch with git format-patch"
            )
        i, current.hunks = _hunks(lines, i + 2, current, where)
        if not current.hunks:
            raise ToolError(f"{where}: {new}: ---/+++ lines without a hunk")
    elif not kinds & {"new file mode", "deleted file mode", "new mode"}:
        raise ToolError(f"{where}: the section of {new} changes nothing")
    return i, current


def parse_diff(diff: str, where: str) -> ParsedDiff:
    """Check the diff against the grammar above; what it changes, and its text."""
    # "\n" only: a form feed or other character str.splitlines() breaks on
    # is part of a line to git and patch
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\0" in diff:
        raise ToolError(f"{where}: holds a NUL byte; the series carries text only")
    if any(line.startswith(GIT_HEADER) and line.endswith("\r") for line in lines):
        raise ToolError(
            f"{where}: its lines end in CR LF; save the patch with LF line ends "
            "(git format-patch writes them)"
        )
    start = next((n for n, ln in enumerate(lines) if ln.startswith(GIT_HEADER)), None)
    if start is None:
        raise ToolError(f"{where}: contains no diff (no `diff --git` section)")
    for line in lines[:start]:
        if line != "---" and DIFF_LIKE.match(line):
            raise ToolError(
                f"{where}: {line!r} before the first `diff --git` looks like a "
                "diff of its own; tools would disagree on what the patch "
                "changes. Remove it."
            )
    files: list[FileDiff] = []
    i = start
    while i < len(lines):
        if lines[i] == SIGNATURE or not any(lines[i:]):  # the rest says nothing
            break
        if not lines[i].startswith(GIT_HEADER):
            raise ToolError(
                f"{where}: unexpected line {lines[i]!r} after the diff of "
                f"{files[-1].path if files else 'nothing'}; a patch holds only "
                "git diff sections. Remove it."
            )
        i, current = _section(lines, i, where)
        files.append(current)
    text = "".join(line + "\n" for line in lines[start:i])
    return ParsedDiff(text, files)

"""The patch model: the series file, patch files, and applying one patch.

Quilt's series (a name per line, -p1 only, # comments), format-patch mails
read with git's own parser, diffs checked by tools/diffs.py, and git apply
at zero fuzz (GNU patch with fuzz for the matrix's second try) with its
outcome per hunk as values (HunkResult), so callers choose their own
words. No checkout lifecycle here: that is tools/patchq.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from tools.diffs import HUNK_RE, FileDiff, parse_diff
from tools.project import (
    PATCHES,
    ToolError,
    git_ceiling,
    git_env,
    read_utf8,
    within,
)

# ---------------------------------------------------------------- series


@dataclass(frozen=True)
class SeriesEntry:
    name: str
    path: Path
    lineno: int


@dataclass(frozen=True)
class SeriesLine:
    """One line of series: a comment or blank (name None), or a patch."""

    raw: str
    name: str | None
    rest: str  # what follows the name (options, comment), kept verbatim


def series_lines(text: str) -> list[SeriesLine]:
    lines = []
    for raw in text.split("\n")[: -1 if text.endswith("\n") else None]:
        code = raw.split("#", 1)[0]
        if not code.strip():
            lines.append(SeriesLine(raw, None, ""))
            continue
        name = code.split()[0]
        lines.append(SeriesLine(raw, name, raw[raw.index(name) + len(name) :]))
    return lines


def series_name_problem(name: str) -> str | None:
    """Why name cannot stand for a file in patches/; None when it can."""
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"{name!r} must be a path inside patches/"
    if name.startswith("-") or not name.isprintable():
        return f"{name!r} must not start with '-' or hold a control character"
    return None


def read_series(patches: Path = PATCHES) -> list[SeriesEntry]:
    """Parse quilt's series format: a name per line, optional -p1, # comments."""
    series = patches / "series"
    if not series.is_file():
        raise ToolError(f"{series}: missing. Create it (it may be empty).")
    entries: list[SeriesEntry] = []
    seen: set[str] = set()
    within(patches, series)
    text = read_utf8(series)
    for lineno, line in enumerate(series_lines(text), 1):
        if line.name is None:
            continue
        name = line.name
        opts = line.rest.split("#", 1)[0].split()
        where = f"{series}:{lineno}"
        if opts not in ([], ["-p1"]):
            raise ToolError(
                f"{where}: unsupported option {' '.join(opts)!r} for {name}; "
                "only -p1 patches are supported. Regenerate the patch with -p1 "
                "paths (a/..., b/...)."
            )
        problem = series_name_problem(name)
        if problem:
            raise ToolError(f"{where}: {problem}")
        if name in seen:
            raise ToolError(f"{where}: {name} is listed twice; remove one line.")
        path = patches / name
        within(patches, path)  # no link out of patches/ reads another file
        if not path.is_file():
            raise ToolError(
                f"{where}: names {name}, which does not exist in {patches}/. "
                "Add the file or remove the line."
            )
        seen.add(name)
        entries.append(SeriesEntry(name, path, lineno))
    return entries


NUMBER_PREFIX = re.compile(r"^\d{4}-")


def _match_names(old: list[str], new: list[str]) -> dict[str, str]:
    """Which exported patch each old series entry became.

    Same name first, then the same name but for the number (a patch moved),
    then, for a series of the same length, the same position.
    """
    mapping: dict[str, str] = {}
    free = list(new)
    for key in (lambda n: n, lambda n: NUMBER_PREFIX.sub("", n)):
        for name in old:
            match = next((n for n in free if key(n) == key(name)), None)
            if name not in mapping and match is not None:
                mapping[name] = match
                free.remove(match)
    if len(old) == len(new):
        for name, same_place in zip(old, new):
            if name not in mapping and same_place in free:
                mapping[name] = same_place
                free.remove(same_place)
    return mapping


def rewrite_series(old_text: str, new: list[str]) -> tuple[str, bool]:
    """series for the exported patches, keeping the old file's comments and
    each entry's options and comment. False when only the leading comment
    block could be kept, because the patches changed order."""
    lines = series_lines(old_text)
    mapping = _match_names([ln.name for ln in lines if ln.name], new)
    rest = {mapping[ln.name]: ln.rest for ln in lines if ln.name in mapping}
    slots = [new.index(mapping[ln.name]) for ln in lines if ln.name in mapping]
    kept_order = slots == sorted(slots)
    if not kept_order:
        head = []
        for ln in lines:
            if ln.name is not None or not ln.raw.startswith("#"):
                break
            head.append(ln)
        lines = head
    out: list[str] = []
    done = 0  # new[:done] are written

    def write_upto(i: int) -> None:
        nonlocal done
        out.extend(name + rest.get(name, "") for name in new[done:i])
        done = max(done, i)

    for ln in lines:
        if ln.name is None:
            out.append(ln.raw)
        elif ln.name in mapping:
            write_upto(new.index(mapping[ln.name]) + 1)
    write_upto(len(new))
    return "".join(line + "\n" for line in out), kept_order


# ---------------------------------------------------------------- patches


@dataclass
class Patch:
    name: str
    author: str
    email: str
    date: str
    message: str
    diff: str  # the `diff --git` sections only (tools/diffs.py)
    files: list[FileDiff]


def _utf8(data: bytes, where: str, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ToolError(
            f"{where}: {what} is not UTF-8 (byte 0x{data[exc.start]:02x} on its "
            f"line {line}); write it in UTF-8, or name its charset in a "
            "Content-Type header"
        ) from None


def mailinfo(mail: Path) -> tuple[int, bytes, bytes, bytes, bytes]:
    """git mailinfo on the file: exit status, stdout (the header), stderr,
    message and diff. Through pipes, so a killed run leaves no file."""
    fds = os.pipe() + os.pipe()  # message read, write; diff read, write
    try:
        with mail.open("rb") as stdin:
            proc = subprocess.Popen(
                [
                    "git",
                    *("-c", "i18n.commitEncoding=UTF-8"),  # whatever a config says
                    "mailinfo",
                    "-b",
                    "-u",
                    "--no-scissors",
                    f"/dev/fd/{fds[1]}",
                    f"/dev/fd/{fds[3]}",
                ],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(fds[1], fds[3]),
                env=git_env(),
            )
    except BaseException:
        os.close(fds[0])
        os.close(fds[2])
        raise
    finally:
        os.close(fds[1])
        os.close(fds[3])
    read: dict[int, bytes] = {}

    def drain(fd: int) -> None:
        with os.fdopen(fd, "rb") as f:
            read[fd] = f.read()

    readers = [threading.Thread(target=drain, args=(fd,)) for fd in fds[::2]]
    for reader in readers:
        reader.start()
    out, err = proc.communicate()
    for reader in readers:
        reader.join()
    return proc.returncode, out, err, read[fds[0]], read[fds[2]]


def read_patch(entry: SeriesEntry, *, where: str | None = None) -> Patch:
    """Split a format-patch file with git's own parser (what `git am` uses).

    where: what an error names (default: the file).
    """
    where = where or str(entry.path)
    with entry.path.open("rb") as f:
        head = f.read(1 << 24)
    if not head:
        raise ToolError(f"{where}: is empty; a patch is a git format-patch mail")
    if b"\0" in head:  # git's C parsers would stop at it, each in its own place
        raise ToolError(f"{where}: holds a NUL byte; the series carries text only")
    code, header, err, msg, diff = mailinfo(entry.path)
    if code:
        why = " ".join(err.decode("utf-8", "replace").split())
        why = re.sub(r"'?/dev/fd/\d+'?", "the patch", why)  # our pipes' names
        raise ToolError(f"{where}: malformed mail header: {why}")
    info = dict(
        line.split(": ", 1)
        for line in _utf8(header, where, "its header").splitlines()
        if ": " in line
    )
    missing = [k for k in ("Author", "Email", "Subject", "Date") if not info.get(k)]
    if missing:
        raise ToolError(
            f"{where}: malformed: the header lacks {', '.join(missing)}. "
            "Each patch needs a git format-patch header (From:, Date:, "
            "Subject:)."
        )
    body = _utf8(msg, where, "its message").strip()
    message = info["Subject"] + ("\n\n" + body if body else "") + "\n"
    # bytes, not text mode: universal newlines would turn a \r into \n
    parsed = parse_diff(diff.decode("utf-8", "surrogateescape"), where)
    return Patch(
        entry.name,
        info["Author"],
        info["Email"],
        info["Date"],
        message,
        parsed.text,
        parsed.files,
    )


# ---------------------------------------------------------------- applying

MOVED, FAILED, ALREADY = "moved", "failed", "already applied"


@dataclass(frozen=True)
class HunkResult:
    """What git apply (or GNU patch) did with a hunk not exactly in place."""

    file: str  # path inside the tree
    number: int  # 1-based within the file; 0 when patch names no hunk
    header: str  # the hunk's @@ line, "" if unknown
    outcome: str  # MOVED (offset or fuzz), FAILED or ALREADY
    line: int = 0  # where patch placed or tried it
    detail: str = ""  # patch's words for a move: "(offset -2 lines)", "with fuzz 1"

    @property
    def old_line(self) -> int | None:
        """The line the hunk expects in the original file, from its header."""
        m = HUNK_RE.match(self.header)
        return int(m[1]) if m else None

    def sentence(self) -> str:
        """The queue's words: "hunk #2 of f (@@ ... @@): (offset -2 lines)."."""
        if self.outcome == ALREADY:
            return f"{self.file}: the change is already in the tree"
        desc = f"hunk #{self.number} of {self.file} ({self.header})"
        if self.outcome == FAILED:
            return f"{desc} does not apply at line {self.line}"
        return f"{desc}: {self.detail}."

    def short(self) -> str:
        """The matrix's words: "f hunk #2 (line 656): offset -2 lines"."""
        if self.old_line is None or self.outcome == ALREADY:
            return self.sentence()
        if self.outcome == FAILED:
            what = f"does not apply at line {self.line}"
        elif self.detail.startswith("(") and self.detail.endswith(")"):
            what = self.detail[1:-1]
        else:
            what = self.detail
        return f"{self.file} hunk #{self.number} (line {self.old_line}): {what}"


class PatchDoesNotApply(ToolError):
    """A patch that does not apply: .hunks says which, .output what the
    applier said."""

    def __init__(self, where: str, hunks: list[HunkResult], output: str) -> None:
        self.where = where
        self.hunks = tuple(hunks)
        self.output = output
        super().__init__(self.render())

    def reasons(self) -> list[str]:
        """One line per failed hunk; patch's own lines if it named none."""
        if self.hunks:
            return [h.sentence() for h in self.hunks]
        return self.output.strip().split("\n")

    def render(self) -> str:
        detail = "\n  ".join(self.reasons())
        return (
            f"{self.where}: does not apply with zero fuzz:\n  {detail}\n"
            "Nothing was changed. Fix the patch (or rebase it in build/aiohttp "
            "and `make refresh`), then run `make apply` again."
        )


@dataclass(frozen=True)
class ApplyReport:
    moved: tuple[HunkResult, ...]  # hunks that applied at an offset or with fuzz


# GNU patch says "patching file f", git apply -v "Checking patch f...".
PATCH_LINE_RE = re.compile(
    r"^(?:(?:patching|checking) file (.+)|Checking patch (.+)\.\.\.)$"
)
HUNK_RESULT_RE = re.compile(r"^Hunk #(\d+) (FAILED|succeeded|ignored) at (\d+)(.*)$")
GIT_FAILED_RE = re.compile(r"^error: patch failed: (.+):(\d+)$")


def _header(patch: Patch, path: str, number: int) -> str:
    """The @@ line of hunk `number` (1-based) of path, "" if unknown."""
    hunks = next((f.hunks for f in patch.files if f.path == path), [])
    return hunks[number - 1] if 0 < number <= len(hunks) else ""


def hunk_results(output: str, patch: Patch) -> list[HunkResult]:
    """GNU patch's or git apply's report, hunk by hunk, as values."""
    current = ""
    results = []
    for line in output.split("\n"):
        if m := PATCH_LINE_RE.match(line):
            current = m[1] or m[2]
        elif m := HUNK_RESULT_RE.match(line):
            n = int(m[1])
            header = _header(patch, current, n)
            if m[2] == "succeeded":
                detail = m[4].strip().removesuffix(".")
                results.append(HunkResult(current, n, header, MOVED, int(m[3]), detail))
            else:
                results.append(HunkResult(current, n, header, FAILED, int(m[3])))
        elif m := GIT_FAILED_RE.match(line):  # git names the hunk by its line
            path, at = m[1], int(m[2])
            hunks = next((f.hunks for f in patch.files if f.path == path), [])
            starts = [int(HUNK_RE.match(h)[1]) for h in hunks]  # type: ignore[index]
            n = starts.index(at) + 1 if at in starts else 0
            results.append(HunkResult(path, n, _header(patch, path, n), FAILED, at))
        elif "previously applied" in line:
            results.append(HunkResult(current, 0, "", ALREADY))
    return results


def git_errors(output: str) -> str:
    """git apply's own error lines, without the text it searched for."""
    kept, searching = [], False
    for line in output.split("\n"):
        if line == "error: while searching for:":
            searching = True
        elif searching:
            searching = line != ""
        elif line.startswith("error: "):
            kept.append(line.removeprefix("error: "))
    return "\n".join(kept)


def check_tree_paths(tree: Path, patch: Patch, where: str) -> None:
    """No path the patch touches goes through a symlink in the tree."""
    for f in patch.files:
        parts = f.path.split("/")
        for n in range(1, len(parts) + 1):
            if tree.joinpath(*parts[:n]).is_symlink():
                raise ToolError(
                    f"{where}: touches {f.path}, but {'/'.join(parts[:n])} is "
                    "a symlink in the tree; no patch writes through one"
                )


def _git_apply(tree: Path, patch: Patch, where: str) -> ApplyReport:
    """git apply: git's own checks (no path beyond a symlink, none in .git,
    all hunks or none), offsets allowed, no fuzz. In a git checkout, the
    change is staged too: exactly the patch's files, ignored ones included."""
    index = ["--index"] if (tree / ".git").is_dir() else []
    data = patch.diff.encode("utf-8", "surrogateescape")

    def run(*args: str) -> tuple[int, str]:
        done = subprocess.run(
            ["git", "apply", "-v", "--whitespace=nowarn", *args, "-"],
            cwd=tree,
            input=data,
            capture_output=True,
            env=git_env(git_ceiling(tree)),
        )
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")

    code, output = run(*index)
    results = hunk_results(output, patch)
    if code:
        failed = [h for h in results if h.outcome != MOVED]
        if not failed and run("--check", "-R")[0] == 0:
            failed = [HunkResult(f.path, 0, "", ALREADY) for f in patch.files]
        raise PatchDoesNotApply(where, failed, git_errors(output))
    return ApplyReport(tuple(h for h in results if h.outcome == MOVED))


def _gnu_patch(tree: Path, patch: Patch, where: str) -> ApplyReport:
    """GNU patch with fuzz 2: the matrix's second try on another release."""
    root = tree.resolve()
    for f in patch.files:  # a symlink in the tree must not lead outside it
        target = (tree / f.path).resolve()
        if root not in (target, *target.parents):
            raise ToolError(
                f"{where}: touches {f.path}, which resolves outside the tree"
            )
    cmd = [
        "patch",
        "-p1",
        "--batch",
        "--forward",
        "--no-backup-if-mismatch",
        "--reject-file=-",
        "--quoting-style=literal",
        "--fuzz=2",
        "-d",
        str(tree),
    ]
    done = subprocess.run(
        cmd, input=patch.diff.encode("utf-8", "surrogateescape"), capture_output=True
    )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    results = hunk_results(output, patch)
    failed = [h for h in results if h.outcome != MOVED]
    if done.returncode or failed:
        raise PatchDoesNotApply(where, failed, output)
    return ApplyReport(tuple(h for h in results if h.outcome == MOVED))


def apply_patch(
    tree: Path, patch: Patch, where: str, *, allow_fuzz: bool = False
) -> ApplyReport:
    """Apply with git apply at zero fuzz; with allow_fuzz, GNU patch at fuzz 2.

    Either way only a diff tools/diffs.py accepted, and never through a
    symlink in the tree; raise with any failed hunk, nothing changed.
    """
    check_tree_paths(tree, patch, where)
    if allow_fuzz:
        return _gnu_patch(tree, patch, where)
    return _git_apply(tree, patch, where)

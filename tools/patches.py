"""The patch model: the series file, patch files, and applying one patch.

Quilt's series (a name per line, -p1 only, # comments), format-patch mails
read with git's own parser, diffs checked for paths inside the tree and
hunk line counts, and GNU patch at zero fuzz with its outcome per hunk as
values (HunkResult), so callers choose their own words. No checkout
lifecycle here: that is tools/patchq.py.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tools.project import PATCHES, ToolError, git_env

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


def read_series(patches: Path = PATCHES) -> list[SeriesEntry]:
    """Parse quilt's series format: a name per line, optional -p1, # comments."""
    series = patches / "series"
    if not series.is_file():
        raise ToolError(f"{series}: missing. Create it (it may be empty).")
    entries: list[SeriesEntry] = []
    seen: set[str] = set()
    text = series.read_text(encoding="utf-8")
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
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ToolError(f"{where}: {name!r} must be a path inside patches/")
        if name in seen:
            raise ToolError(f"{where}: {name} is listed twice; remove one line.")
        path = patches / name
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

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
BINARY_RE = re.compile(r"^Binary files (.+) and (.+) differ$")


@dataclass
class FileDiff:
    path: str  # the path inside the tree, after -p1
    hunks: list[str] = field(default_factory=list)  # the @@ header lines


@dataclass
class Patch:
    name: str
    author: str
    email: str
    date: str
    message: str
    diff: str
    files: list[FileDiff]


def _strip_p1(raw: str, where: str) -> str | None:
    raw = raw.split("\t", 1)[0].strip()
    if raw == "/dev/null":
        return None
    parts = PurePosixPath(raw).parts
    if len(parts) < 2:
        raise ToolError(f"{where}: path {raw!r} has no a/ or b/ prefix (-p1)")
    rel = PurePosixPath(*parts[1:])
    if raw.startswith("/") or ".." in rel.parts or rel.parts[0] == ".git":
        raise ToolError(
            f"{where}: touches {raw!r}, which is outside the tree. "
            "Fix or remove this patch."
        )
    return str(rel)


def _count_hunk(
    lines: list[str], i: int, want_old: int, want_new: int
) -> tuple[int, int, int]:
    """Count a hunk body from line i; return the next index and the counts."""
    old = new = 0
    while i < len(lines) and (old < want_old or new < want_new):
        tag = lines[i][:1]
        if tag in (" ", ""):
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


def parse_diff(diff: str, where: str) -> list[FileDiff]:
    """Check the diff's structure: paths inside the tree, hunk line counts."""
    files: list[FileDiff] = []
    # "\n" only: a form feed or other character str.splitlines() breaks on
    # is part of a line to git and patch
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    current_git = ""
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            current_git = line.rsplit(" b/", 1)[-1]
        binary = BINARY_RE.match(line)
        if binary or line.startswith("GIT binary patch"):
            path = binary[2].removeprefix("b/") if binary else current_git
            raise ToolError(
                f"{where}: changes the binary file {path}, which quilt and "
                "patch cannot apply; the series carries text changes only. "
                "Remove that change from the patch."
            )
        if line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            # these carry bare paths: give them the a/ that _strip_p1 strips
            _strip_p1("a/" + line.split(" ", 2)[2], where)
        if (
            line.startswith("--- ")
            and i + 1 < len(lines)
            and lines[i + 1].startswith("+++ ")
        ):
            before = _strip_p1(line[4:], where)
            after = _strip_p1(lines[i + 1][4:], where)
            current = FileDiff(after or before or "")
            files.append(current)
            i += 2
            continue
        match = HUNK_RE.match(line)
        if match:
            if not files:
                raise ToolError(
                    f"{where}: hunk {line!r} before any ---/+++ file header"
                )
            current = files[-1]
            current.hunks.append(line)
            want_old = int(match[2] if match[2] is not None else 1)
            want_new = int(match[4] if match[4] is not None else 1)
            i, old, new = _count_hunk(lines, i + 1, want_old, want_new)
            if (old, new) != (want_old, want_new):
                raise ToolError(
                    f"{where}: hunk #{len(current.hunks)} of {current.path} "
                    f"({line}) is malformed: its header promises {want_old} old "
                    f"and {want_new} new lines, the body has {old} and {new}."
                )
            continue
        i += 1
    if not files:
        raise ToolError(f"{where}: contains no diff (no ---/+++ file headers)")
    return files


def read_patch(entry: SeriesEntry) -> Patch:
    """Split a format-patch file with git's own parser (what `git am` uses)."""
    where = str(entry.path)
    with tempfile.TemporaryDirectory() as tmp:
        msg, diff = Path(tmp) / "msg", Path(tmp) / "diff"
        with entry.path.open("rb") as mail:
            done = subprocess.run(
                ["git", "mailinfo", "-b", "-u", str(msg), str(diff)],
                stdin=mail,
                capture_output=True,
                env=git_env(),
            )
        if done.returncode:
            why = " ".join(done.stderr.decode("utf-8", "replace").split())
            raise ToolError(f"{where}: malformed mail header: {why}")
        info = dict(
            line.split(": ", 1)
            for line in done.stdout.decode("utf-8", "replace").splitlines()
            if ": " in line
        )
        missing = [k for k in ("Author", "Email", "Subject", "Date") if not info.get(k)]
        if missing:
            raise ToolError(
                f"{where}: malformed: the header lacks {', '.join(missing)}. "
                "Each patch needs a git format-patch header (From:, Date:, "
                "Subject:); `make refresh` writes one."
            )
        body = msg.read_text(encoding="utf-8").strip()
        message = info["Subject"] + ("\n\n" + body if body else "") + "\n"
        # bytes, not read_text(): universal newlines would turn a \r into \n
        diff_text = diff.read_bytes().decode("utf-8", "surrogateescape")
    return Patch(
        entry.name,
        info["Author"],
        info["Email"],
        info["Date"],
        message,
        diff_text,
        parse_diff(diff_text, where),
    )


# ---------------------------------------------------------------- applying

MOVED, FAILED, ALREADY = "moved", "failed", "already applied"


@dataclass(frozen=True)
class HunkResult:
    """What GNU patch did with one hunk that did not land exactly in place."""

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
    """A patch GNU patch refused: .hunks says which, .output what patch said."""

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


PATCH_LINE_RE = re.compile(r"^(?:patching|checking) file (.+)$")
HUNK_RESULT_RE = re.compile(r"^Hunk #(\d+) (FAILED|succeeded|ignored) at (\d+)(.*)$")


def hunk_results(output: str, patch: Patch) -> list[HunkResult]:
    """GNU patch's report, hunk by hunk, as values."""
    current = ""
    results = []
    for line in output.split("\n"):
        if m := PATCH_LINE_RE.match(line):
            current = m[1]
        elif m := HUNK_RESULT_RE.match(line):
            n = int(m[1])
            header = next(
                (
                    f.hunks[n - 1]
                    for f in patch.files
                    if f.path == current and n <= len(f.hunks)
                ),
                "",
            )
            if m[2] == "succeeded":
                detail = m[4].strip().removesuffix(".")
                results.append(HunkResult(current, n, header, MOVED, int(m[3]), detail))
            else:
                results.append(HunkResult(current, n, header, FAILED, int(m[3])))
        elif "previously applied" in line:
            results.append(HunkResult(current, 0, "", ALREADY))
    return results


def apply_patch(
    tree: Path, patch: Patch, where: str, *, allow_fuzz: bool = False
) -> ApplyReport:
    """Apply with GNU patch, zero fuzz unless asked; raise with any failed hunk."""
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
        "-d",
        str(tree),
    ]
    cmd.append("--fuzz=2" if allow_fuzz else "--fuzz=0")
    done = subprocess.run(
        cmd, input=patch.diff.encode("utf-8", "surrogateescape"), capture_output=True
    )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    results = hunk_results(output, patch)
    failed = [h for h in results if h.outcome != MOVED]
    if done.returncode or failed:
        raise PatchDoesNotApply(where, failed, output)
    return ApplyReport(tuple(h for h in results if h.outcome == MOVED))

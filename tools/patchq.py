"""The patch queue: pinned sdist + patches/series <-> a git checkout.

    python -m tools.patchq apply [--force]   build/aiohttp = tag + one commit per patch
    python -m tools.patchq unapply [--force] build/aiohttp back at the pristine tag
    python -m tools.patchq refresh [--force] commits above the tag -> patches/
    python -m tools.patchq recover           finish or undo an interrupted swap

The checkout is rebuilt in a temporary directory and swapped in only when
every patch applied, so a failure leaves the old checkout exactly as it was.
Nothing the user made is deleted or overwritten without --force (make's
FORCE=1), and then a copy is kept and named: the checkout goes whole to
build/aiohttp.discarded/, patches/ to build/patches.discarded/. One command
runs at a time (tools/fsops.py: lock, temp dirs, swaps that survive SIGKILL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from tools import fsops, sdist
from tools.cli import ToolError, reports_errors

ROOT = sdist.ROOT
PATCHES = ROOT / "patches"
CHECKOUT = ROOT / "build" / "aiohttp"
BRANCH = "patch-queue"
STATE = "patchq-state.json"  # kept inside .git: records what apply built
IMPORT_IDENTITY = ("sdist import", "sdist-import@localhost")
DISCARDED = "aiohttp.discarded"  # under build/: checkouts FORCE=1 replaced
PATCHES_DISCARDED = "patches.discarded"  # under build/: patches/ FORCE=1 replaced

# Produced by building or installing from the checkout; never an edit.
BUILD_ARTEFACTS = """\
/build/
/dist/
*.egg-info/
*.so
*.pyd
*.o
__pycache__/
*.py[cod]
.pytest_cache/
.mypy_cache/
.tox/
.pc/
"""
# Tracked in the sdist but rewritten by any setuptools build.
BUILD_OWNED_TRACKED = ("aiohttp.egg-info/",)

# The sdist ships vendor/llhttp as a git submodule checkout; its `.git`
# file points at a directory that does not exist and git cannot track it.
UNTRACKABLE = ("vendor/llhttp/.git",)

FORMAT_PATCH_OPTS = (
    "--zero-commit",
    "--no-signature",
    "--no-numbered",
    "--full-index",
    "--no-renames",
    "--diff-algorithm=myers",
    "--stat=72",
    "--no-binary",
)


class QueueError(ToolError):
    """One clear message: what is wrong, in which file, and what to do."""


class PatchDoesNotApply(QueueError):
    """A patch GNU patch refused; .failures names each hunk that failed."""

    def __init__(self, message: str, where: str, failures: list[str]) -> None:
        super().__init__(message)
        self.where = where
        self.failures = failures


# ---------------------------------------------------------------- git


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment where no user or system git config changes output."""
    env = dict(os.environ)
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        LC_ALL="C",
        TZ="UTC",
    )
    env.update(extra or {})
    return env


def git(
    repo: Path,
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    where: str | None = None,
) -> str:
    """Run git in repo; on failure name `where` (default: repo) and git's words.

    Pass where= when repo is a temporary directory, which will not exist
    by the time the user reads the message.
    """
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        input=input,
        encoding="utf-8",
        errors="surrogateescape",
        env=git_env(env),
    )
    if check and done.returncode:
        raise QueueError(
            f"{where or repo}: `git {' '.join(args)}` failed: "
            + " ".join(done.stderr.split())
        )
    return done.stdout


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
        raise QueueError(f"{series}: missing. Create it (it may be empty).")
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
            raise QueueError(
                f"{where}: unsupported option {' '.join(opts)!r} for {name}; "
                "only -p1 patches are supported. Regenerate the patch with -p1 "
                "paths (a/..., b/...)."
            )
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise QueueError(f"{where}: {name!r} must be a path inside patches/")
        if name in seen:
            raise QueueError(f"{where}: {name} is listed twice; remove one line.")
        path = patches / name
        if not path.is_file():
            raise QueueError(
                f"{where}: names {name}, which does not exist in {patches}/. "
                "Add the file or remove the line."
            )
        seen.add(name)
        entries.append(SeriesEntry(name, path, lineno))
    return entries


def series_stamp(pin: sdist.Pin, entries: list[SeriesEntry], patches: Path) -> str:
    """Identifies everything a checkout is built from."""
    digest = hashlib.sha256(pin.sha256.encode())
    digest.update((patches / "series").read_bytes())
    for entry in entries:
        digest.update(entry.name.encode() + b"\0" + entry.path.read_bytes())
    return digest.hexdigest()


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
        raise QueueError(f"{where}: path {raw!r} has no a/ or b/ prefix (-p1)")
    rel = PurePosixPath(*parts[1:])
    if raw.startswith("/") or ".." in rel.parts or rel.parts[0] == ".git":
        raise QueueError(
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
            raise QueueError(
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
                raise QueueError(
                    f"{where}: hunk {line!r} before any ---/+++ file header"
                )
            current = files[-1]
            current.hunks.append(line)
            want_old = int(match[2] if match[2] is not None else 1)
            want_new = int(match[4] if match[4] is not None else 1)
            i, old, new = _count_hunk(lines, i + 1, want_old, want_new)
            if (old, new) != (want_old, want_new):
                raise QueueError(
                    f"{where}: hunk #{len(current.hunks)} of {current.path} "
                    f"({line}) is malformed: its header promises {want_old} old "
                    f"and {want_new} new lines, the body has {old} and {new}."
                )
            continue
        i += 1
    if not files:
        raise QueueError(f"{where}: contains no diff (no ---/+++ file headers)")
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
            raise QueueError(f"{where}: malformed mail header: {why}")
        info = dict(
            line.split(": ", 1)
            for line in done.stdout.decode("utf-8", "replace").splitlines()
            if ": " in line
        )
        missing = [k for k in ("Author", "Email", "Subject", "Date") if not info.get(k)]
        if missing:
            raise QueueError(
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


@dataclass
class ApplyReport:
    offsets: list[str]  # "file hunk #n (offset k lines)" for hunks that moved


PATCH_LINE_RE = re.compile(r"^(?:patching|checking) file (.+)$")
HUNK_RESULT_RE = re.compile(r"^Hunk #(\d+) (FAILED|succeeded|ignored) at (\d+)(.*)$")


def apply_patch(
    tree: Path, patch: Patch, where: str, *, allow_fuzz: bool = False
) -> ApplyReport:
    """Apply with GNU patch, zero fuzz unless asked; explain any failed hunk."""
    root = tree.resolve()
    for f in patch.files:  # a symlink in the tree must not lead outside it
        target = (tree / f.path).resolve()
        if root not in (target, *target.parents):
            raise QueueError(
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
    current = ""
    offsets: list[str] = []
    failures: list[str] = []
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
            desc = f"hunk #{n} of {current} ({header})"
            if m[2] == "succeeded":
                offsets.append(f"{desc}:{m[4]}")
            else:
                failures.append(f"{desc} does not apply at line {m[3]}")
        elif "previously applied" in line:
            failures.append(f"{current}: the change is already in the tree")
    if done.returncode or failures:
        failures = failures or output.strip().split("\n")
        detail = "\n  ".join(failures)
        raise PatchDoesNotApply(
            f"{where}: does not apply with zero fuzz:\n  {detail}\n"
            "Nothing was changed. Fix the patch (or rebase it in build/aiohttp "
            "and `make refresh`), then run `make apply` again.",
            where,
            failures,
        )
    return ApplyReport(offsets)


def commit_patch(tree: Path, patch: Patch, where: str) -> None:
    git(tree, "add", "-A", where=where)
    if not git(tree, "status", "--porcelain", where=where):
        raise QueueError(f"{where}: applies but changes nothing; remove it from series")
    who = {
        "GIT_AUTHOR_NAME": patch.author,
        "GIT_AUTHOR_EMAIL": patch.email,
        "GIT_AUTHOR_DATE": patch.date,
        # committer = author: rebuilding gives the same commit ids
        "GIT_COMMITTER_NAME": patch.author,
        "GIT_COMMITTER_EMAIL": patch.email,
        "GIT_COMMITTER_DATE": patch.date,
    }
    git(
        tree,
        *("commit", "-q", "--no-verify", "--cleanup=verbatim", "-F", "-"),
        input=patch.message,
        env=who,
        where=where,
    )


# ---------------------------------------------------------------- checkout


def import_identity(epoch: int) -> dict[str, str]:
    """Author and committer of an sdist import: fixed, so ids are stable."""
    name, email = IMPORT_IDENTITY
    when = f"@{epoch} +0000"
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": when,
    }


def unpack_for_git(archive: Path, dest: Path) -> None:
    """The sdist's files in dest, less the one file git cannot hold."""
    sdist.unpack(archive, dest)
    for rel in UNTRACKABLE:
        (dest / rel).unlink(missing_ok=True)


def import_pristine(tree: Path, pin: sdist.Pin) -> None:
    """tree = the verified sdist, committed and tagged, with nothing left out."""
    archive = sdist.fetch(pin)
    unpack_for_git(archive, tree)
    who = import_identity(sdist.source_date_epoch(archive, pin))
    where = str(archive)
    git(tree, "init", "-q", f"--initial-branch={BRANCH}", where=where)
    # -f: the sdist's own .gitignore files hide vendor/llhttp/build/, the
    # generated llhttp sources the C extension needs.
    git(tree, "add", "-A", "-f", where=where)
    git(
        tree,
        *("commit", "-q", "--no-verify", "-m", f"Import {pin.sdist}"),
        env=who,
        where=where,
    )
    git(tree, "tag", pin.tag, where=where)
    exclude = tree / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text(BUILD_ARTEFACTS)


@dataclass
class CheckoutState:
    """What the tools made the checkout from (kept in .git/patchq-state.json).

    Anything in the checkout that this does not account for is the user's.
    """

    stamp: str | None = None  # series_stamp() it was built from; None: at the tag
    head: str | None = None
    refs: dict[str, str] | None = None  # every ref the tools made: name -> id
    reflog: int | None = None  # HEAD's reflog entries when the state was written
    files: dict[str, str] = field(default_factory=dict)  # patches/ name -> sha256
    pin: dict[str, str] | None = None  # the sdist pin the tag holds
    commits: dict[str, str] = field(default_factory=dict)  # commit -> patch name


def read_state(tree: Path) -> CheckoutState:
    try:
        data = json.loads((tree / ".git" / STATE).read_text())
        known = CheckoutState.__dataclass_fields__
        return CheckoutState(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        return CheckoutState()


def refs_of(tree: Path) -> dict[str, str]:
    out = git(tree, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines())


def reflog_of(tree: Path) -> list[str]:
    return git(tree, "reflog", "show", "--format=%H", "HEAD", check=False).split()


def state_text(
    tree: Path,
    stamp: str | None,
    pin: sdist.Pin,
    files: dict[str, str],
    commits: dict[str, str] | None = None,
) -> str:
    """The state to record for tree as it is now."""
    state = CheckoutState(
        stamp=stamp,
        head=git(tree, "rev-parse", "HEAD").strip(),
        refs=refs_of(tree),
        reflog=len(reflog_of(tree)),
        files=files,
        pin=asdict(pin),
        commits=commits or {},
    )
    return json.dumps(asdict(state), indent=1, sort_keys=True) + "\n"


def write_state(tree: Path, text: str) -> None:
    fsops.write_atomic(tree / ".git" / STATE, text.encode())


def file_digests(patches: Path, names: list[str]) -> dict[str, str]:
    return {n: sdist.sha256_of(patches / n) for n in names if (patches / n).is_file()}


def rebase_in_progress(tree: Path) -> bool:
    return any((tree / ".git" / d).exists() for d in ("rebase-merge", "rebase-apply"))


def local_changes(tree: Path, pin: sdist.Pin) -> list[str]:
    """What the user has in the checkout that patches/ does not hold."""
    if not (tree / ".git").is_dir():
        return [f"{tree} is not a git checkout made by `make apply`"]
    problems = []
    if rebase_in_progress(tree):
        problems.append(
            "a rebase in progress (`make rebase-continue` or `make rebase-abort`)"
        )
    status = git(tree, "status", "--porcelain", "--untracked-files=all")
    edits = [
        line
        for line in status.splitlines()
        if not line[3:].startswith(BUILD_OWNED_TRACKED)
    ]
    if edits:
        shown = "\n    ".join(edits[:10]) + ("\n    ..." if len(edits) > 10 else "")
        problems.append(f"uncommitted edits or untracked files:\n    {shown}")
    state = read_state(tree)
    head = git(tree, "rev-parse", "-q", "--verify", "HEAD", check=False).strip()
    if state.head is None:
        problems.append(f"no record of what was built ({STATE} is missing)")
    elif head != state.head:
        log = git(tree, "log", "--oneline", f"{state.head}..HEAD", check=False).strip()
        problems.append(
            "commits not in patches/:\n    "
            + ("\n    ".join(log.splitlines()) or f"HEAD moved to {head[:12]}")
        )
    ours = state.refs
    if ours is None:  # recorded by an older version: the branch and the tag
        ours = {f"refs/heads/{BRANCH}": state.head or "", f"refs/tags/{pin.tag}": ""}
    for ref, commit in sorted(refs_of(tree).items()):
        if ref == "refs/stash":
            count = len(git(tree, "stash", "list").splitlines())
            problems.append(f"{count} stash entr{'y' if count == 1 else 'ies'}")
        elif ref == f"refs/heads/{BRANCH}" and head != state.head:
            continue  # reported above
        elif ref not in ours or ours[ref] not in ("", commit):
            subject = git(tree, "log", "-1", "--format=%h %s", commit).strip()
            problems.append(f"{ref} ({subject}) was not made by the tools")
    reflog = reflog_of(tree)
    if state.reflog is not None and len(reflog) > state.reflog:
        recent = reflog[: len(reflog) - state.reflog]
        lost = git(tree, "rev-list", "--no-walk", *set(recent), "--not", "--all")
        if lost.strip():
            shown = git(tree, "log", "--no-walk", "--oneline", *lost.split())
            problems.append(
                "commits only in the reflog:\n    "
                + "\n    ".join(shown.strip().splitlines())
            )
    return problems


def build_checkout(
    pin: sdist.Pin, entries: list[SeriesEntry], dest: Path
) -> tuple[list[str], dict[str, str]]:
    """Build tag + series into dest (a new directory).

    Returns offset notes and which commit each patch became.
    """
    patches = [read_patch(e) for e in entries]  # all malformed ones fail first
    import_pristine(dest, pin)
    notes = []
    commits = {}
    for entry, patch in zip(entries, patches):
        where = str(entry.path)
        report = apply_patch(dest, patch, where)
        notes += [f"{entry.name}: {o}" for o in report.offsets]
        commit_patch(dest, patch, where)
        commits[git(dest, "rev-parse", "HEAD", where=where).strip()] = entry.name
    return notes, commits


def _refuse(tree: Path, problems: list[str], action: str) -> QueueError:
    return QueueError(
        f"{tree} holds work that is not in patches/: make it commits on "
        f"{BRANCH} and run `make refresh` to keep it, or run `make {action} "
        f"FORCE=1` to move the whole checkout to build/{DISCARDED}/ and go on.\n  "
        + "\n  ".join(problems)
    )


def _begin(build: Path) -> None:
    for note in fsops.start(build):
        print(note, file=sys.stderr)


def _replace_checkout(
    build: Path, new: Path, tree: Path, keep: bool, then: dict[str, str] | None = None
) -> Path | None:
    kept = fsops.unique_name(build / DISCARDED) if keep else None
    fsops.swap_in(build, new, tree, keep_old=kept, then=then)
    if kept:
        print(f"the checkout with your work is kept in {kept}")
    return kept


def apply(
    force: bool = False, *, tree: Path = CHECKOUT, patches: Path = PATCHES
) -> None:
    build = tree.parent
    with fsops.locked(build, "make apply"):
        _begin(build)
        pin = sdist.load_pin()
        entries = read_series(patches)
        stamp = series_stamp(pin, entries, patches)
        problems: list[str] = []
        if tree.exists() or tree.is_symlink():
            problems = local_changes(tree, pin)
            if problems and not force:
                raise _refuse(tree, problems, "apply")
            if not problems and read_state(tree).stamp == stamp:
                print(f"{tree}: up to date ({pin.tag} + {len(entries)} patches)")
                return
        new = fsops.new_tmp_dir(build, "aiohttp-")
        try:
            notes, commits = build_checkout(pin, entries, new)
            names = ["series", *(e.name for e in entries)]
            files = file_digests(patches, names)
            write_state(new, state_text(new, stamp, pin, files, commits))
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        _replace_checkout(build, new, tree, keep=bool(problems))
    for note in notes:
        print(f"note: {note}; `make refresh` will update its line numbers")
    print(f"{tree}: {pin.tag} + {len(entries)} patches applied")


def unapply(force: bool = False, *, tree: Path = CHECKOUT) -> None:
    build = tree.parent
    with fsops.locked(build, "make unapply"):
        _begin(build)
        pin = sdist.load_pin()
        if not tree.exists():
            raise QueueError(f"{tree}: no checkout. Run `make apply` first.")
        problems = local_changes(tree, pin)
        if problems and not force:
            raise _refuse(tree, problems, "unapply")
        new = fsops.new_tmp_dir(build, "aiohttp-")
        try:
            import_pristine(new, pin)
            write_state(new, state_text(new, None, pin, {}))
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        _replace_checkout(build, new, tree, keep=bool(problems))
    print(f"{tree}: at {pin.tag}, the pristine sdist")


# ---------------------------------------------------------------- refresh


def _check_exportable(tree: Path, tag: str) -> None:
    """Refuse, before anything is written, commits the series cannot carry."""
    if git(tree, "rev-list", "--merges", f"{tag}..HEAD").strip():
        raise QueueError(
            f"{tree}: merge commits above {tag}; rebase to a linear history. "
            "patches/ was not changed."
        )
    log = git(
        tree, "log", "--format=%x00%h %s", "--numstat", "--no-renames", f"{tag}..HEAD"
    )
    for record in log.split("\0")[1:]:
        commit, *stats = [ln for ln in record.split("\n") if ln]
        if not stats:
            raise QueueError(
                f"{tree}: commit {commit} changes nothing, so it cannot be a "
                "patch; drop it (git rebase -i) and refresh again. patches/ "
                "was not changed."
            )
        for stat in stats:
            added, _, path = stat.split("\t", 2)
            if added == "-":
                raise QueueError(
                    f"{tree}: commit {commit} changes the binary file {path}, "
                    "which quilt and patch cannot apply; take that change out "
                    "of the commit and refresh again. patches/ was not changed."
                )


def stage_export(
    tree: Path, tag: str, patches: Path, build: Path
) -> tuple[Path, list[str], bool]:
    """patches/ as the commits above tag make it, built in a temp dir.

    Returns the directory, the exported names, and whether the series
    comments could all be kept. Nothing in patches/ is touched.
    """
    _check_exportable(tree, tag)
    stage = fsops.new_tmp_dir(build, "patches-")
    out = stage / "patches"
    if patches.is_dir():
        shutil.copytree(patches, out, symlinks=True)
    else:
        out.mkdir()
    exported = stage / "format-patch"
    git(tree, "format-patch", *FORMAT_PATCH_OPTS, "-o", str(exported), f"{tag}..HEAD")
    new = sorted(exported.glob("*.patch"))
    for p in new:  # what apply would refuse must not be written
        read_patch(SeriesEntry(p.name, p, 0))
    series = patches / "series"
    old_text = series.read_text(encoding="utf-8") if series.is_file() else ""
    names = [p.name for p in new]
    for line in series_lines(old_text):
        if line.name and line.name not in names:
            (out / line.name).unlink(missing_ok=True)
    for p in new:
        shutil.copyfile(p, out / p.name)
    text, kept_comments = rewrite_series(old_text, names)
    (out / "series").write_text(text, encoding="utf-8")
    shutil.rmtree(exported)
    return out, names, kept_comments


def changed_files(old: Path, new: Path) -> list[tuple[str, str]]:
    """(name, "changes"/"deletes") for each file of old that new differs in."""

    def files(d: Path) -> dict[str, Path]:
        if not d.is_dir():
            return {}
        return {str(p.relative_to(d)): p for p in d.rglob("*") if p.is_file()}

    before, after = files(old), files(new)
    changes = []
    for name, path in sorted(before.items()):
        if name not in after:
            changes.append((name, "deletes"))
        elif path.read_bytes() != after[name].read_bytes():
            changes.append((name, "changes"))
    changes += [(name, "adds") for name in sorted(set(after) - set(before))]
    return changes


def export_patches(
    tree: Path,
    pin: sdist.Pin,
    patches: Path,
    *,
    force: bool,
    forced: bool,
    then: dict[str, str] | None = None,
) -> tuple[int, Path | None, bool]:
    """Write the commits above the tag to patches/ in one swap.

    Every file refresh would change or delete must be one the checkout was
    built from or exported, unchanged since; otherwise refuse, or with
    force keep a copy of patches/. forced: force was already needed.
    Returns the number of patches, where the old patches/ was kept, and
    whether the series comments were all kept.
    """
    build = tree.parent
    known = dict(read_state(tree).files)
    if not forced:  # the stamp matched: series and its patches built the tree
        known.update(file_digests(patches, ["series", *_series_names(patches)]))
    out, names, kept_comments = stage_export(tree, pin.tag, patches, build)
    changes = changed_files(patches, out)
    unknown = [
        (name, what)
        for name, what in changes
        if what != "adds" and known.get(name) != sdist.sha256_of(patches / name)
    ]
    if unknown and not force:
        name, what = unknown[0]
        raise QueueError(
            f"{patches / name}: refreshing {what} it, and it is not a patch "
            f"{tree} was built from: move it out of patches/ (or list it in "
            "series and `make apply`), or run `make refresh FORCE=1` (a copy "
            f"of patches/ goes to build/{PATCHES_DISCARDED}/)."
        )
    stamp = series_stamp(pin, read_series(out), out)
    digests = file_digests(out, ["series", *names])
    then = {
        str(tree / ".git" / STATE): state_text(tree, stamp, pin, digests),
        **(then or {}),
    }
    if not changes:
        for path, text in then.items():
            fsops.write_atomic(Path(path), text.encode())
        shutil.rmtree(out.parent)
        return len(names), None, kept_comments
    keep = fsops.unique_name(build / PATCHES_DISCARDED) if (forced or unknown) else None
    fsops.swap_in(build, out, patches, keep_old=keep, then=then)
    return len(names), keep, kept_comments


def _series_names(patches: Path) -> list[str]:
    return [e.name for e in read_series(patches)]


def refresh(
    force: bool = False, *, tree: Path = CHECKOUT, patches: Path = PATCHES
) -> None:
    build = tree.parent
    with fsops.locked(build, "make refresh"):
        _begin(build)
        pin = sdist.load_pin()
        if not (tree / ".git").is_dir():
            raise QueueError(f"{tree}: no checkout. Run `make apply` first.")
        if rebase_in_progress(tree):
            raise QueueError(
                f"{tree}: a rebase is in progress; finish it with `make "
                "rebase-continue` (which refreshes) or `make rebase-abort`."
            )
        status = [
            line
            for line in git(tree, "status", "--porcelain").splitlines()
            if not line[3:].startswith(BUILD_OWNED_TRACKED)
        ]
        if status:
            raise QueueError(
                f"{tree} has uncommitted edits; refresh exports commits only. "
                f"Commit them (git -C {tree} commit -a) and run `make refresh` "
                "again."
            )
        state = read_state(tree)
        try:
            current: str | None = series_stamp(pin, read_series(patches), patches)
        except QueueError:
            if not force:
                raise
            current = None
        forced = state.stamp is None or state.stamp != current
        if forced and not force:
            why = (
                f"it is at {pin.tag}, unapplied"
                if state.stamp is None
                else "patches/ or upstream.toml changed since it was built"
            )
            raise QueueError(
                f"{tree} was not built from the current patches/ ({why}), so "
                "exporting it would overwrite or delete patches. Run `make "
                "apply` to build them (it refuses if the checkout has work "
                "not in patches/), or `make refresh FORCE=1` to export anyway "
                f"(a copy of patches/ goes to build/{PATCHES_DISCARDED}/)."
            )
        count, kept, kept_comments = export_patches(
            tree, pin, patches, force=force, forced=forced
        )
    if not kept_comments:
        print(
            "note: the patches changed order; series comments other than the "
            "leading block were dropped"
        )
    if kept:
        print(f"the previous patches/ is kept in {kept}")
    print(f"{patches}/: {count} patches exported from {tree}")


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.patchq",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["apply", "unapply", "refresh", "recover"])
    parser.add_argument("--force", action="store_true", help="discard local work")
    args = parser.parse_args(argv)
    if args.command == "apply":
        apply(args.force)
    elif args.command == "unapply":
        unapply(args.force)
    elif args.command == "recover":  # what every command does first
        build = CHECKOUT.parent
        with fsops.locked(build, "make clean"):
            _begin(build)
    else:
        refresh(args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The patch queue: pinned sdist + patches/series <-> a git checkout.

    python -m tools.patchq apply [--force]   build/aiohttp = tag + one commit per patch
    python -m tools.patchq unapply [--force] build/aiohttp back at the pristine tag
    python -m tools.patchq refresh [--force] commits above the tag -> patches/

The checkout is rebuilt in a temporary directory and swapped in only when
every patch applied, so a failure leaves the old checkout exactly as it was.
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
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tools import sdist
from tools.cli import ToolError, reports_errors

ROOT = sdist.ROOT
PATCHES = ROOT / "patches"
CHECKOUT = ROOT / "build" / "aiohttp"
BRANCH = "patch-queue"
STATE = "patchq-state.json"  # kept inside .git: records what apply built
IMPORT_IDENTITY = ("sdist import", "sdist-import@localhost")

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
    repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=git_env(env),
    )
    if check and done.returncode:
        raise QueueError(f"git {' '.join(args)} failed in {repo}:\n{done.stderr}")
    return done.stdout


# ---------------------------------------------------------------- series


@dataclass(frozen=True)
class SeriesEntry:
    name: str
    path: Path
    lineno: int


def read_series(patches: Path = PATCHES) -> list[SeriesEntry]:
    """Parse quilt's series format: a name per line, optional -p1, # comments."""
    series = patches / "series"
    if not series.is_file():
        raise QueueError(f"{series}: missing. Create it (it may be empty).")
    entries: list[SeriesEntry] = []
    seen: set[str] = set()
    for lineno, raw in enumerate(series.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, *opts = line.split()
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


# ---------------------------------------------------------------- patches

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


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
    lines = diff.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("GIT binary patch"):
            raise QueueError(f"{where}: binary patches are not supported")
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
            raise QueueError(f"{where}: malformed mail header: {done.stderr!r}")
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
        diff_text = diff.read_text(encoding="utf-8", errors="surrogateescape")
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
    done = subprocess.run(cmd, input=patch.diff, capture_output=True, text=True)
    output = done.stdout + done.stderr
    current = ""
    offsets: list[str] = []
    failures: list[str] = []
    for line in output.splitlines():
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
        failures = failures or output.strip().splitlines()
        detail = "\n  ".join(failures)
        raise PatchDoesNotApply(
            f"{where}: does not apply with zero fuzz:\n  {detail}\n"
            "Nothing was changed. Fix the patch (or rebase it in build/aiohttp "
            "and `make refresh`), then run `make apply` again.",
            where,
            failures,
        )
    return ApplyReport(offsets)


def commit_patch(tree: Path, patch: Patch) -> None:
    git(tree, "add", "-A")
    if not git(tree, "status", "--porcelain"):
        raise QueueError(
            f"{patch.name}: applies but changes nothing; remove it from series"
        )
    who = {
        "GIT_AUTHOR_NAME": patch.author,
        "GIT_AUTHOR_EMAIL": patch.email,
        "GIT_AUTHOR_DATE": patch.date,
        # committer = author: rebuilding gives the same commit ids
        "GIT_COMMITTER_NAME": patch.author,
        "GIT_COMMITTER_EMAIL": patch.email,
        "GIT_COMMITTER_DATE": patch.date,
    }
    subprocess.run(
        [
            "git",
            "-C",
            str(tree),
            "commit",
            "-q",
            "--no-verify",
            "--cleanup=verbatim",
            "-F",
            "-",
        ],
        input=patch.message,
        text=True,
        check=True,
        capture_output=True,
        env=git_env(who),
    )


# ---------------------------------------------------------------- checkout


def import_pristine(tree: Path, pin: sdist.Pin) -> None:
    """tree = the verified sdist, committed and tagged, with nothing left out."""
    archive = sdist.fetch(pin)
    sdist.unpack(archive, tree)
    for rel in UNTRACKABLE:
        (tree / rel).unlink(missing_ok=True)
    epoch = sdist.source_date_epoch(archive, pin)
    name, email = IMPORT_IDENTITY
    when = f"@{epoch} +0000"
    who = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": when,
    }
    git(tree, "init", "-q", f"--initial-branch={BRANCH}")
    # -f: the sdist's own .gitignore files hide vendor/llhttp/build/, the
    # generated llhttp sources the C extension needs.
    git(tree, "add", "-A", "-f")
    git(tree, "commit", "-q", "--no-verify", "-m", f"Import {pin.sdist}", env=who)
    git(tree, "tag", pin.tag)
    exclude = tree / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text(BUILD_ARTEFACTS)


@dataclass
class CheckoutState:
    stamp: str | None
    head: str | None


def read_state(tree: Path) -> CheckoutState:
    try:
        data = json.loads((tree / ".git" / STATE).read_text())
        return CheckoutState(data.get("stamp"), data.get("head"))
    except (OSError, ValueError):
        return CheckoutState(None, None)


def write_state(tree: Path, stamp: str | None) -> None:
    head = git(tree, "rev-parse", "HEAD").strip()
    (tree / ".git" / STATE).write_text(
        json.dumps({"stamp": stamp, "head": head}) + "\n"
    )


def local_changes(tree: Path, pin: sdist.Pin) -> list[str]:
    """What the user has in the checkout that patches/ does not hold."""
    if not (tree / ".git").is_dir():
        return [f"{tree} is not a git checkout made by `make apply`"]
    problems = []
    status = git(tree, "status", "--porcelain", "--untracked-files=all")
    edits = [
        line
        for line in status.splitlines()
        if not line[3:].startswith(BUILD_OWNED_TRACKED)
    ]
    if edits:
        shown = "\n    ".join(edits[:10]) + ("\n    ..." if len(edits) > 10 else "")
        problems.append(f"uncommitted edits:\n    {shown}")
    state = read_state(tree)
    head = git(tree, "rev-parse", "HEAD").strip()
    if state.head is not None and head != state.head:
        log = git(tree, "log", "--oneline", f"{state.head}..HEAD", check=False).strip()
        problems.append(
            "commits not in patches/:\n    "
            + ("\n    ".join(log.splitlines()) or f"HEAD moved to {head[:12]}")
        )
    return problems


def build_checkout(pin: sdist.Pin, entries: list[SeriesEntry], dest: Path) -> list[str]:
    """Build tag + series into dest (a new directory); return offset notes."""
    patches = [read_patch(e) for e in entries]  # all malformed ones fail first
    import_pristine(dest, pin)
    notes = []
    for entry, patch in zip(entries, patches):
        report = apply_patch(dest, patch, str(entry.path))
        notes += [f"{entry.name}: {o}" for o in report.offsets]
        commit_patch(dest, patch)
    return notes


def _replace_checkout(new: Path, old: Path, keep_old: bool) -> Path | None:
    """Swap new into old's place; keep the old one aside when asked."""
    kept = None
    if old.exists():
        if keep_old:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            kept = old.parent / "aiohttp.discarded" / stamp
            kept.parent.mkdir(parents=True, exist_ok=True)
            old.rename(kept)
        else:
            trash = old.with_name(old.name + ".old")
            shutil.rmtree(trash, ignore_errors=True)
            old.rename(trash)
            shutil.rmtree(trash)
    new.rename(old)
    return kept


def _refuse(tree: Path, problems: list[str], action: str) -> QueueError:
    return QueueError(
        f"{tree} has work that is not in patches/:\n  "
        + "\n  ".join(problems)
        + f"\nTo keep it: commit your edits in {tree} and run `make refresh`, "
        f"which writes them to patches/. To discard it: `make {action} FORCE=1` "
        f"(the old checkout is moved to build/aiohttp.discarded/)."
    )


def apply(
    force: bool = False, *, tree: Path = CHECKOUT, patches: Path = PATCHES
) -> None:
    pin = sdist.load_pin()
    entries = read_series(patches)
    stamp = series_stamp(pin, entries, patches)
    problems: list[str] = []
    if tree.exists():
        problems = local_changes(tree, pin)
        if problems and not force:
            raise _refuse(tree, problems, "apply")
        if not problems and read_state(tree).stamp == stamp:
            print(f"{tree}: up to date ({pin.tag} + {len(entries)} patches)")
            return
    tree.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=".aiohttp.", dir=tree.parent))
    umask = os.umask(0)
    os.umask(umask)
    new.chmod(0o777 & ~umask)  # mkdtemp makes it private
    try:
        notes = build_checkout(pin, entries, new)
        write_state(new, stamp)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    kept = _replace_checkout(new, tree, keep_old=bool(problems))
    for note in notes:
        print(f"note: {note}; `make refresh` will update its line numbers")
    if kept:
        print(f"discarded work kept in {kept}")
    print(f"{tree}: {pin.tag} + {len(entries)} patches applied")


def unapply(force: bool = False, *, tree: Path = CHECKOUT) -> None:
    pin = sdist.load_pin()
    if not tree.exists():
        raise QueueError(f"{tree}: no checkout. Run `make apply` first.")
    problems = local_changes(tree, pin)
    if problems and not force:
        raise _refuse(tree, problems, "unapply")
    if problems:  # keep a copy of what is discarded
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        kept = tree.parent / "aiohttp.discarded" / stamp
        shutil.copytree(tree, kept, symlinks=True)
        print(f"discarded work kept in {kept}")
    git(tree, "checkout", "-q", "-f", "-B", BRANCH, pin.tag)
    git(tree, "clean", "-q", "-f", "-d", "-x")
    write_state(tree, None)
    print(f"{tree}: at {pin.tag}, the pristine sdist")


def refresh(
    force: bool = False, *, tree: Path = CHECKOUT, patches: Path = PATCHES
) -> None:
    pin = sdist.load_pin()
    if not (tree / ".git").is_dir():
        raise QueueError(f"{tree}: no checkout. Run `make apply` first.")
    status = [
        line
        for line in git(tree, "status", "--porcelain").splitlines()
        if not line[3:].startswith(BUILD_OWNED_TRACKED)
    ]
    if status:
        raise QueueError(
            f"{tree} has uncommitted edits; refresh exports commits only. "
            f"Commit them (git -C {tree} commit -a) and run `make refresh` again."
        )
    state = read_state(tree)
    if state.stamp is not None and not force:
        entries = read_series(patches)
        if series_stamp(pin, entries, patches) != state.stamp:
            raise QueueError(
                f"{patches}/ changed since {tree} was built, so refreshing "
                "would overwrite those edits. Run `make apply` to build them, "
                "or `make refresh FORCE=1` to overwrite them."
            )
    if git(tree, "rev-list", "--merges", f"{pin.tag}..HEAD").strip():
        raise QueueError(
            f"{tree}: merge commits above {pin.tag}; rebase to a linear history"
        )
    with tempfile.TemporaryDirectory() as tmp:
        git(tree, "format-patch", *FORMAT_PATCH_OPTS, "-o", tmp, f"{pin.tag}..HEAD")
        new = sorted(Path(tmp).glob("*.patch"))
        old = (
            {e.name for e in read_series(patches)}
            if (patches / "series").exists()
            else set()
        )
        header = _series_header(patches / "series")
        patches.mkdir(parents=True, exist_ok=True)
        for p in new:
            shutil.copyfile(p, patches / p.name)
        for name in old - {p.name for p in new}:
            (patches / name).unlink(missing_ok=True)
        (patches / "series").write_text(header + "".join(f"{p.name}\n" for p in new))
    write_state(tree, series_stamp(pin, read_series(patches), patches))
    print(f"{patches}/: {len(new)} patches exported from {tree}")


def _series_header(series: Path) -> str:
    """The leading comment block of the series file, kept across refreshes."""
    if not series.exists():
        return ""
    header = []
    for line in series.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header.append(line)
    return "".join(header)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.patchq",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["apply", "unapply", "refresh"])
    parser.add_argument("--force", action="store_true", help="discard local work")
    args = parser.parse_args(argv)
    if args.command == "apply":
        apply(args.force)
    elif args.command == "unapply":
        unapply(args.force)
    else:
        refresh(args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())

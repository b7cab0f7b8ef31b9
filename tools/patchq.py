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

This is the checkout's lifecycle only: the series and patch files, and
applying one patch, are tools/patches.py; what refresh writes (each patch
proven to rebuild its commit) is tools/export.py; what other tools read
about the checkout (its recorded state, the user's work in it) is
tools/checkout_state.py.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tools import fsops, sdist
from tools.checkout_state import (
    BRANCH,
    BUILD_OWNED_TRACKED,
    file_digests,
    in_progress,
    local_changes,
    off_branch,
    read_state,
    series_stamp,
    state_text,
    write_state,
)
from tools.cli import reports_errors
from tools.export import PATCHES_DISCARDED, export_patches
from tools.patches import (
    Patch,
    SeriesEntry,
    apply_patch,
    read_patch,
    read_series,
)
from tools.project import (
    CACHE_DIR,
    CHECKOUT,
    PATCHES,
    PIN_FILE,
    ROOT,
    Pin,
    ToolError,
    git,
    git_identity,
    load_pin,
    no_checkout,
    within,
)

IMPORT_IDENTITY = ("sdist import", "sdist-import@localhost")
DISCARDED = "aiohttp.discarded"  # under build/: checkouts FORCE=1 replaced

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

# The sdist ships vendor/llhttp as a git submodule checkout; its `.git`
# file points at a directory that does not exist and git cannot track it.
UNTRACKABLE = ("vendor/llhttp/.git",)


# ---------------------------------------------------------------- building


def commit_patch(tree: Path, patch: Patch, where: str) -> None:
    """Commit what apply_patch staged: exactly the patch's files (ignored
    ones too), nothing else that happens to be in the tree."""
    if not git(tree, "diff", "--cached", "--name-only", where=where).strip():
        raise ToolError(f"{where}: applies but changes nothing; remove it from series")
    # committer = author: rebuilding gives the same commit ids
    who = git_identity(patch.author, patch.email, patch.date)
    git(
        tree,
        *("commit", "-q", "--no-verify", "--cleanup=verbatim", "-F", "-"),
        input=patch.message,
        env=who,
        where=where,
    )


def import_identity(epoch: int) -> dict[str, str]:
    """Author and committer of an sdist import: fixed, so ids are stable."""
    return git_identity(*IMPORT_IDENTITY, f"@{epoch} +0000")


def unpack_for_git(archive: Path, dest: Path) -> None:
    """The sdist's files in dest, less the one file git cannot hold."""
    sdist.unpack(archive, dest)
    for rel in UNTRACKABLE:
        (dest / rel).unlink(missing_ok=True)


def import_pristine(tree: Path, pin: Pin) -> None:
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


def build_checkout(
    pin: Pin, entries: list[SeriesEntry], dest: Path
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
        notes += [f"{entry.name}: {h.sentence()}" for h in report.moved]
        commit_patch(dest, patch, where)
        commits[git(dest, "rev-parse", "HEAD", where=where).strip()] = entry.name
    return notes, commits


def _refuse(tree: Path, problems: list[str], action: str) -> ToolError:
    return ToolError(
        f"{tree} holds work that is not in patches/: make it commits on "
        f"{BRANCH} and run `make refresh` to keep it, or run `make {action} "
        f"FORCE=1` to move the whole checkout to build/{DISCARDED}/ and go on.\n  "
        + "\n  ".join(problems)
    )


def begin(build: Path) -> None:
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


def stays_inside(tree: Path, patches: Path, pin_file: Path) -> None:
    """Refuse to start when a path the queue uses leads out of the project
    (a symlink build/, patches/, upstream.toml, build/cache or checkout)."""
    within(ROOT, tree.parent, tree, patches, pin_file, CACHE_DIR)


def apply(
    force: bool = False,
    *,
    tree: Path = CHECKOUT,
    patches: Path = PATCHES,
    pin_file: Path = PIN_FILE,
) -> None:
    stays_inside(tree, patches, pin_file)
    build = tree.parent
    with fsops.locked(build, "make apply"):
        begin(build)
        pin = load_pin(pin_file)
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


def unapply(
    force: bool = False,
    *,
    tree: Path = CHECKOUT,
    patches: Path = PATCHES,
    pin_file: Path = PIN_FILE,
) -> None:
    stays_inside(tree, patches, pin_file)
    build = tree.parent
    with fsops.locked(build, "make unapply"):
        begin(build)
        pin = load_pin(pin_file)
        if not tree.exists():
            raise no_checkout(tree)
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


def refresh(
    force: bool = False,
    *,
    tree: Path = CHECKOUT,
    patches: Path = PATCHES,
    pin_file: Path = PIN_FILE,
) -> None:
    stays_inside(tree, patches, pin_file)
    build = tree.parent
    with fsops.locked(build, "make refresh"):
        begin(build)
        pin = load_pin(pin_file)
        if not (tree / ".git").is_dir():
            raise no_checkout(tree)
        # refresh exports the queue branch, and only when nothing is half done
        for problem in (in_progress(tree), off_branch(tree)):
            if problem:
                raise ToolError(
                    f"{tree}: {problem}; then `make refresh`. patches/ was not changed."
                )
        status = [
            line
            for line in git(tree, "status", "--porcelain").splitlines()
            if not line[3:].startswith(BUILD_OWNED_TRACKED)
        ]
        if status:
            raise ToolError(
                f"{tree} has uncommitted edits; refresh exports commits only. "
                f"Commit them (git -C {tree} commit -a) and run `make refresh` "
                "again."
            )
        state = read_state(tree)
        try:
            current: str | None = series_stamp(pin, read_series(patches), patches)
        except ToolError:
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
            raise ToolError(
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


COMMAND_HELP = {
    "apply": "build/aiohttp = tag + one commit per patch",
    "unapply": "build/aiohttp back at the pristine tag",
    "refresh": "commits above the tag -> patches/",
}
# --force for each command: what it overrides, and what copy is kept.
FORCE_HELP = {
    "apply": "rebuild even if build/aiohttp holds work not in patches/; "
    f"that checkout is moved whole to build/{DISCARDED}/",
    "unapply": "go back to the pristine tag even if build/aiohttp holds work "
    f"not in patches/; that checkout is moved whole to build/{DISCARDED}/",
    "refresh": "export even if build/aiohttp was not built from the current "
    "patches/ (or patches/ cannot be read, or holds files it was not built "
    f"from); the old patches/ is copied to build/{PATCHES_DISCARDED}/. "
    "Uncommitted edits still stop it",
}


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.patchq",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, force_help in FORCE_HELP.items():
        commands.add_parser(name, help=COMMAND_HELP[name]).add_argument(
            "--force", action="store_true", help=force_help
        )
    commands.add_parser("recover", help="finish or undo an interrupted swap")
    args = parser.parse_args(argv)
    if args.command == "apply":
        apply(args.force)
    elif args.command == "unapply":
        unapply(args.force)
    elif args.command == "recover":  # what every command does first
        build = CHECKOUT.parent
        within(ROOT, build)
        with fsops.locked(build, "make clean"):
            begin(build)
    else:
        refresh(args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())

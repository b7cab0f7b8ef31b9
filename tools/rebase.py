"""make rebase: carry the series to another aiohttp release (like gbp pq rebase).

    python -m tools.rebase [--to VERSION] [--force]   start
    python -m tools.rebase --continue                 after resolving a conflict
    python -m tools.rebase --abort                    back to where it started

The new release is the one upstream.toml pins (the user edited it), or with
--to (make's TO=) the one matrix.toml pins; then upstream.toml is rewritten
only when the rebase completes. In build/aiohttp the new sdist becomes a
commit on top of the old pristine tag (tag v<new>, branch `upstream`), and
the patch-queue branch is replayed onto it with `git rebase`: three-way
merges, so a patch whose context moved or changed nearby still lands where
plain `patch` would refuse it. A conflict stops with the checkout
mid-rebase and one message naming the patch, the files, and what to run
next. patches/ (and upstream.toml) change only when the rebase completes,
in one swap; --abort puts the checkout back as it was.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools import fsops, sdist
from tools.checkout_state import (
    BRANCH,
    REBASE_STATE,
    STATE,
    git_advice,
    local_changes,
    read_state,
    rebase_in_progress,
    reflog_of,
    refs_of,
    series_stamp,
    write_state,
)
from tools.cli import reports_errors
from tools.export import export_patches
from tools.patches import read_series
from tools.patchq import begin, import_identity, unpack_for_git
from tools.project import (
    CACHE_DIR,
    CHECKOUT,
    MATRIX_FILE,
    PATCHES,
    PIN_FILE,
    ROOT,
    Pin,
    ToolError,
    checked_name,
    git,
    git_ceiling,
    git_env,
    load_pin,
    matrix_pins,
    no_checkout,
    read_utf8,
    within,
)

UPSTREAM_BRANCH = "refs/heads/upstream"  # the sdist imports, one per release
# who replays the patches (authors and dates stay the patches' own)
REBASER = {
    "GIT_COMMITTER_NAME": "patch queue rebase",
    "GIT_COMMITTER_EMAIL": "patchq-rebase@localhost",
    "GIT_EDITOR": "true",
}


@dataclass
class Rebase:
    old_pin: dict[str, str]
    new_pin: dict[str, str]
    upstream_text: str | None  # the new upstream.toml, for --to
    old_head: str
    old_refs: dict[str, str]
    old_state: str  # the checkout's state file before the rebase
    patches: int


def _pin(data: dict[str, str]) -> Pin:
    return Pin(**data)


def pin_from_matrix(version: str, matrix: Path, pin_file: Path) -> tuple[Pin, str]:
    """matrix.toml's pin for version, and upstream.toml rewritten to it."""
    checked_name("version", version, "TO")  # from the command line
    current = load_pin(pin_file)
    pinned = {p.version: p for p in matrix_pins(matrix, current)}
    if version not in pinned:
        raise ToolError(
            f"{matrix}: has no sha256 for {current.name} {version}; add it under "
            "[sdists], or set version, sdist and sha256 in upstream.toml and run "
            "`make rebase` without TO="
        )
    pin = pinned[version]
    text = read_utf8(pin_file)
    for key in ("version", "sdist", "sha256"):
        text, n = re.subn(
            rf'^{key} = "[^"]*"$',
            f'{key} = "{getattr(pin, key)}"',
            text,
            count=1,
            flags=re.M,
        )
        if not n:
            raise ToolError(f'{pin_file}: has no `{key} = "..."` line to update')
    return pin, text


def _state_file(tree: Path) -> Path:
    return tree / ".git" / REBASE_STATE


def _load(tree: Path) -> Rebase:
    try:
        return Rebase(**json.loads(_state_file(tree).read_text()))
    except FileNotFoundError:
        if rebase_in_progress(tree):  # a `git rebase` of the user's own
            raise ToolError(
                f"{tree}: no `make rebase` in progress; the rebase there is "
                f"your own: `{git_advice(tree, 'rebase', '--continue')}` or "
                f"`{git_advice(tree, 'rebase', '--abort')}`."
            ) from None
        raise ToolError(
            f"{tree}: no `make rebase` in progress; start one with `make rebase`."
        ) from None


def _conflict(tree: Path, rebase: Rebase) -> ToolError:
    stopped = git(tree, "rev-parse", "-q", "--verify", "REBASE_HEAD", check=False)
    names: dict[str, Any] = json.loads(rebase.old_state).get("commits", {})
    patch = names.get(stopped.strip())
    if patch is None:
        patch = git(tree, "log", "-1", "--format=%s", stopped.strip() or "HEAD")
    files = git(tree, "diff", "--name-only", "--diff-filter=U").split()
    new = _pin(rebase.new_pin)
    return ToolError(
        f"{patch.strip()}: conflicts with {new.name} {new.version} in "
        f"{', '.join(files) or 'the tree'}; {tree} is stopped mid-rebase and "
        "patches/ is unchanged. Resolve the conflict, "
        f"`{git_advice(tree, 'add', *files)}`, then `make rebase-continue` "
        "(it refreshes patches/); or `make rebase-abort` to go back to "
        f"{_pin(rebase.old_pin).version}."
    )


def import_release(tree: Path, old: Pin, new: Pin) -> str:
    """The new sdist as a commit on top of the old pristine tag; its id."""
    archive = sdist.fetch(new)
    build = tree.parent
    work = fsops.new_tmp_dir(build, "import-")
    try:
        src = work / "src"
        unpack_for_git(archive, src)
        env = {"GIT_INDEX_FILE": str(work / "index")}
        git(tree, f"--work-tree={src}", "add", "-A", "-f", env=env, where=str(archive))
        tree_id = git(tree, "write-tree", env=env).strip()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    who = import_identity(sdist.source_date_epoch(archive, new))
    commit = git(
        tree,
        *("commit-tree", tree_id, "-p", old.tag, "-m", f"Import {new.sdist}"),
        env=who,
    ).strip()
    # the same commit each time (fixed identity and date): a second import
    # after a kill sets the same refs again
    git(tree, "update-ref", f"refs/tags/{new.tag}", commit)
    git(tree, "update-ref", UPSTREAM_BRANCH, commit)
    return commit


def replayed(tree: Path, new: Pin) -> bool:
    """The queue branch is checked out and stands on the new release."""
    head = git(tree, "symbolic-ref", "-q", "HEAD", check=False).strip()
    tag = git(tree, "rev-parse", "-q", "--verify", f"{new.tag}^{{commit}}", check=False)
    base = git(tree, "merge-base", new.tag, "HEAD", check=False)
    return head == f"refs/heads/{BRANCH}" and bool(tag.strip()) and base == tag


def start(
    to: str | None = None,
    *,
    tree: Path = CHECKOUT,
    patches: Path = PATCHES,
    pin_file: Path = PIN_FILE,
    matrix: Path = MATRIX_FILE,
) -> None:
    within(ROOT, tree.parent, tree, patches, pin_file, matrix, CACHE_DIR)
    build = tree.parent
    with fsops.locked(build, "make rebase"):
        begin(build)
        if not (tree / ".git").is_dir():
            raise no_checkout(tree)
        if _state_file(tree).exists():
            raise ToolError(
                f"{tree}: a `make rebase` is already in progress; "
                "`make rebase-continue` or `make rebase-abort`."
            )
        state = read_state(tree)
        if state.pin is None:
            raise ToolError(
                f"{tree}: does not record which sdist it holds; run `make "
                "apply` (with the old pin) first."
            )
        old = _pin(state.pin)
        problems = local_changes(tree, old)
        if problems:
            raise ToolError(
                f"{tree} holds work that is not in patches/; `make refresh` "
                "it (or `make apply FORCE=1` to set it aside) before a "
                "rebase.\n  " + "\n  ".join(problems)
            )
        entries = read_series(patches)
        if state.stamp != series_stamp(old, entries, patches):
            raise ToolError(
                f"{patches}/ changed since {tree} was built; build it first "
                "(`make apply` with the old pin), then rebase."
            )
        if to is not None:
            new, upstream_text = pin_from_matrix(to, matrix, pin_file)
        else:
            new, upstream_text = load_pin(pin_file), None
        if new.version == old.version:
            raise ToolError(
                f"{pin_file}: pins {new.version}, which {tree} is already "
                "built on; set the new version, sdist and sha256 there, or "
                "run `make rebase TO=<version>` (pinned in matrix.toml)."
            )
        # the new sdist is what its pin says, before the checkout is touched
        sdist.source_date_epoch(sdist.fetch(new), new)
        old_state = (tree / ".git" / STATE).read_text()
        rebase = Rebase(
            asdict(old),
            asdict(new),
            upstream_text,
            git(tree, "rev-parse", "HEAD").strip(),
            refs_of(tree),
            old_state,
            len(entries),
        )
        fsops.write_atomic(_state_file(tree), json.dumps(asdict(rebase)).encode())
        try:
            import_release(tree, old, new)
        except BaseException:
            _restore(tree, rebase)
            raise
        print(f"{tree}: {new.tag} imported on top of {old.tag}; replaying the series")
        _replay(tree, rebase, "--onto", new.tag, old.tag, BRANCH)
        _complete(tree, patches, pin_file, rebase)


def _replay(tree: Path, rebase: Rebase, *args: str) -> None:
    """git rebase with args; a conflict raises the one-line explanation."""
    options: tuple[str, ...] = ("-c", "merge.conflictStyle=diff3", "rebase")
    if args[0] != "--continue":
        options += ("--committer-date-is-author-date",)
    done = subprocess.run(
        ["git", "-C", str(tree), *options, *args],
        capture_output=True,
        text=True,
        env=git_env({**git_ceiling(tree), **REBASER}),
    )
    if rebase_in_progress(tree):
        raise _conflict(tree, rebase)
    current = git(tree, "symbolic-ref", "-q", "HEAD", check=False).strip()
    if done.returncode or current != f"refs/heads/{BRANCH}":
        raise ToolError(
            f"{tree}: git rebase failed ({' '.join(done.stderr.split())}); "
            "`make rebase-abort` goes back to where it started."
        )


def _complete(tree: Path, patches: Path, pin_file: Path, rebase: Rebase) -> None:
    new = _pin(rebase.new_pin)
    if not replayed(tree, new):
        raise ToolError(
            f"{tree}: the series is not replayed onto {new.tag}; patches/ is "
            "unchanged. `make rebase-continue` runs the replay, `make "
            "rebase-abort` goes back to where it started."
        )
    then = {}
    if rebase.upstream_text is not None:
        then[str(pin_file)] = rebase.upstream_text
    elif load_pin(pin_file) != new:
        raise ToolError(
            f"{pin_file}: no longer pins {new.version}, the release the "
            "checkout was rebased onto; set it back, then `make rebase-continue`."
        )
    count, _, _ = export_patches(
        tree, new, patches, force=False, forced=False, then=then
    )
    _state_file(tree).unlink()
    print(f"{patches}/: {count} patches rebased onto {new.tag}")
    if rebase.upstream_text is not None:
        print(f"{pin_file}: now pins {new.name} {new.version}")


def cont(
    *, tree: Path = CHECKOUT, patches: Path = PATCHES, pin_file: Path = PIN_FILE
) -> None:
    build = tree.parent
    within(ROOT, tree.parent, tree, patches, pin_file, CACHE_DIR)
    with fsops.locked(build, "make rebase-continue"):
        begin(build)
        rebase = _load(tree)
        old, new = _pin(rebase.old_pin), _pin(rebase.new_pin)
        if rebase_in_progress(tree):
            unmerged = git(tree, "diff", "--name-only", "--diff-filter=U").split()
            if unmerged:
                raise ToolError(
                    f"{tree}: still unresolved: {', '.join(unmerged)}; resolve, "
                    f"`{git_advice(tree, 'add', *unmerged)}`, then `make "
                    "rebase-continue`."
                )
            _replay(tree, rebase, "--continue")
        elif not replayed(tree, new):  # `make rebase` was killed before it
            print(f"{tree}: importing {new.tag} and replaying the series")
            import_release(tree, old, new)
            _replay(tree, rebase, "--onto", new.tag, old.tag, BRANCH)
        _complete(tree, patches, pin_file, rebase)


def _restore(tree: Path, rebase: Rebase) -> None:
    """The checkout as it was before the rebase: branch, refs, state."""
    if rebase_in_progress(tree):
        git(tree, "rebase", "--abort", check=False)
    git(tree, "checkout", "-q", "-f", BRANCH)
    git(tree, "reset", "-q", "--hard", rebase.old_head)
    now = refs_of(tree)
    for ref in set(now) - set(rebase.old_refs):
        git(tree, "update-ref", "-d", ref)
    for ref, commit in rebase.old_refs.items():
        if now.get(ref) != commit:
            git(tree, "update-ref", ref, commit)
    # the replayed commits stay in the reflog; they are not the user's work
    state = json.loads(rebase.old_state)
    state["reflog"] = len(reflog_of(tree))
    write_state(tree, json.dumps(state, indent=1, sort_keys=True) + "\n")
    _state_file(tree).unlink(missing_ok=True)


def abort(*, tree: Path = CHECKOUT, pin_file: Path = PIN_FILE) -> None:
    build = tree.parent
    within(ROOT, tree.parent, tree, pin_file)
    with fsops.locked(build, "make rebase-abort"):
        begin(build)
        rebase = _load(tree)
        _restore(tree, rebase)
    old = _pin(rebase.old_pin)
    print(f"{tree}: back at {old.tag} + {rebase.patches} patches; patches/ unchanged")
    if rebase.upstream_text is None and load_pin(pin_file) != old:
        print(
            f"note: {pin_file} still pins what you set; `git checkout "
            f"{pin_file.name}` (or set it back to {old.version}) to match patches/"
        )


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.rebase",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--to", metavar="VERSION", help="the release in matrix.toml")
    group.add_argument("--continue", dest="cont", action="store_true")
    group.add_argument("--abort", action="store_true")
    args = parser.parse_args(argv)
    if args.cont:
        cont()
    elif args.abort:
        abort()
    else:
        start(args.to)
    return 0


if __name__ == "__main__":
    sys.exit(main())

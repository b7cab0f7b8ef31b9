"""What the tools know about build/aiohttp without changing it.

The record `make apply` keeps in .git (CheckoutState), the stamp of what a
checkout is built from, and the user's work in it that patches/ does not
hold. Tools that read the checkout (wheel, intree, rebase) ask here, not
the queue command.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools import fsops
from tools.patches import SeriesEntry, read_series
from tools.project import CHECKOUT, PATCHES, Pin, git, load_pin, require_checkout
from tools.sdist import sha256_of

BRANCH = "patch-queue"
STATE = "patchq-state.json"  # kept inside .git: records what apply built
REBASE_STATE = "patchq-rebase.json"  # inside .git while `make rebase` runs
# Tracked in the sdist but rewritten by any setuptools build.
BUILD_OWNED_TRACKED = ("aiohttp.egg-info/",)


def series_stamp(pin: Pin, entries: list[SeriesEntry], patches: Path) -> str:
    """Identifies everything a checkout is built from."""
    # the whole pin: a version edited alone must not look up to date
    digest = hashlib.sha256(json.dumps(asdict(pin), sort_keys=True).encode())
    digest.update((patches / "series").read_bytes())
    for entry in entries:
        digest.update(entry.name.encode() + b"\0" + entry.path.read_bytes())
    return digest.hexdigest()


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
    pin: Pin,
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
    return {n: sha256_of(patches / n) for n in names if (patches / n).is_file()}


def rebase_in_progress(tree: Path) -> bool:
    return any((tree / ".git" / d).exists() for d in ("rebase-merge", "rebase-apply"))


def git_advice(tree: Path, *args: str) -> str:
    """A git command on tree as the user can paste it (the path quoted)."""
    return shlex.join(["git", "-C", str(tree), *args])


# The user's own unfinished git operations: marker in .git, command.
OPERATIONS = (
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase"),  # or `git am`: rebase-apply/applying
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
)


def in_progress(tree: Path) -> str | None:
    """An unfinished operation in tree and how to end it; None if none."""
    git_dir = tree / ".git"
    if (git_dir / REBASE_STATE).exists():
        return (
            "a `make rebase` is in progress: finish it with `make "
            "rebase-continue` (which refreshes patches/) or undo it with "
            "`make rebase-abort`"
        )
    for marker, command in OPERATIONS:
        if (git_dir / marker).exists():
            if (git_dir / marker / "applying").exists():
                command = "am"
            return (
                f"your own `git {command}` is in progress: finish it with "
                f"`{git_advice(tree, command, '--continue')}` or drop it with "
                f"`{git_advice(tree, command, '--abort')}`"
            )
    if (git_dir / "BISECT_LOG").exists():
        return (
            "your own `git bisect` is in progress: end it with "
            f"`{git_advice(tree, 'bisect', 'reset')}`"
        )
    return None


def off_branch(tree: Path) -> str | None:
    """Why HEAD is not the queue branch, and how to go back; None if it is."""
    ref = git(tree, "symbolic-ref", "-q", "HEAD", check=False).strip()
    if ref == f"refs/heads/{BRANCH}":
        return None
    back = f"go back with `{git_advice(tree, 'switch', BRANCH)}`"
    if ref:
        return (
            f"HEAD is on branch {ref.removeprefix('refs/heads/')}, not {BRANCH}: "
            f"{back} (and `git cherry-pick` the commits you want onto {BRANCH})"
        )
    at = git(tree, "log", "-1", "--format=%h %s", "HEAD", check=False).strip()
    return (
        f"HEAD is detached at {at or 'nothing'}, not on {BRANCH}: {back} (git "
        f"names any commit that would be left behind; `git cherry-pick` it "
        f"onto {BRANCH})"
    )


def local_changes(tree: Path, pin: Pin) -> list[str]:
    """What the user has in the checkout that patches/ does not hold."""
    if not (tree / ".git").is_dir() or (tree / ".git").is_symlink():
        return [f"{tree} is not a git checkout made by `make apply`"]
    problems = []
    operation = in_progress(tree)
    if operation:
        problems.append(operation)
    elif off := off_branch(tree):
        problems.append(off)
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


def stale_or_local(
    tree: Path = CHECKOUT, pin: Pin | None = None, patches: Path = PATCHES
) -> list[str]:
    """Why tree is not exactly what patches/ builds on pin; [] when it is.

    The user's work (local_changes); else ["stale"] when patches/ or the
    pin changed since `make apply` built it. Raises when there is no checkout.
    """
    require_checkout(tree)
    pin = pin or load_pin()
    problems = local_changes(tree, pin)
    stamp = series_stamp(pin, read_series(patches), patches)
    if not problems and read_state(tree).stamp != stamp:
        problems.append("stale")
    return problems

"""What `make refresh` (and `make rebase`) write: the commits above the tag
as patches/, each proven to rebuild its commit, swapped in whole.

Every exported file is read back with the queue's own reader and applied
to the commit's parent in a scratch index: it must give the same files,
author and message. A commit that would not survive the trip (a subject
mail readers strip, a `---` line in its message, a symlink, a binary file,
an empty message...) is refused by name before patches/ is touched.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tools import fsops, sdist
from tools.checkout_state import (
    STATE,
    file_digests,
    read_state,
    series_stamp,
    state_text,
)
from tools.patches import (
    Patch,
    SeriesEntry,
    read_patch,
    read_series,
    rewrite_series,
    series_lines,
    series_name_problem,
)
from tools.project import Pin, ToolError, git, git_identity, read_utf8, within

PATCHES_DISCARDED = "patches.discarded"  # under build/: patches/ FORCE=1 replaced

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
UNCHANGED = "patches/ was not changed."
REWORD = "reword it (`git rebase -i`, then `reword`) and refresh again"
NOT_REGULAR = {"120000": "a symlink", "160000": "a submodule"}


def _commits(tree: Path, tag: str) -> list[tuple[str, str]]:
    """(id, "abbrev subject") of each commit above tag, oldest first."""
    out = git(tree, "log", "--reverse", "--format=%H %h %s", f"{tag}..HEAD")
    pairs = (line.split(" ", 1) for line in out.splitlines())
    return [(commit, name) for commit, name in pairs]


def _check_exportable(tree: Path, tag: str) -> None:
    """Refuse, before anything is written, commits the series cannot carry."""
    if git(tree, "rev-list", "--merges", f"{tag}..HEAD").strip():
        raise ToolError(
            f"{tree}: merge commits above {tag}; rebase to a linear history. "
            f"{UNCHANGED}"
        )
    for commit, name in _commits(tree, tag):
        where = f"{tree}: commit {name}"
        raw = git(tree, "diff-tree", "-r", "--no-renames", "--no-commit-id", commit)
        if not raw.strip():
            raise ToolError(
                f"{where} changes nothing, so it cannot be a patch; drop it "
                f"(git rebase -i) and refresh again. {UNCHANGED}"
            )
        for line in raw.splitlines():
            modes, _, path = line.partition("\t")
            for mode in modes.split()[:2]:
                if mode.lstrip(":") in NOT_REGULAR:
                    what = NOT_REGULAR[mode.lstrip(":")]
                    raise ToolError(
                        f"{where} makes {path} {what}; the series carries "
                        "regular files only: take that change out of the "
                        f"commit and refresh again. {UNCHANGED}"
                    )
        stats = git(tree, "diff-tree", "-r", "--no-renames", "--numstat", commit)
        for stat in stats.splitlines()[1:]:
            added, _, path = stat.split("\t", 2)
            if added == "-":
                raise ToolError(
                    f"{where} changes the binary file {path}, which quilt and "
                    "patch cannot apply; take that change out of the commit "
                    f"and refresh again. {UNCHANGED}"
                )


def _why_message_differs(original: str, read_back: str) -> str:
    """The likely reason a message did not survive a mail, in words."""
    lines = original.split("\n")
    subject = lines[0]
    if re.match(r"\s*(\[|(re|aw|fwd?)\s*:)", subject, re.I):
        return (
            f"its subject {subject!r} starts with what a mail reader strips "
            "(a 'Re:' or a [...] prefix)"
        )
    body = lines[2:] if len(lines) > 2 and not lines[1] else lines[1:]
    if body and re.match(r"(From|Date|Subject):", body[0]):
        return (
            f"its message body starts with {body[0]!r}, which a mail reader "
            "takes for a header (the author or subject)"
        )
    for line in body:
        if line.startswith(("---", "diff -", "Index: ")):
            return (
                f"its message has the line {line!r}, where a mail reader ends "
                "the message and looks for the diff"
            )
    want, got = original.split("\n"), read_back.split("\n")
    n = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), None)
    if n is None:
        n = min(len(want), len(got))
    return (
        f"line {n + 1} of its message would read back as "
        f"{(got[n:] or [''])[0]!r}, not {(want[n:] or [''])[0]!r}"
    )


def _header(commit_header: str, field: str) -> str:
    lines = commit_header.splitlines()
    return next((ln[len(field) :] for ln in lines if ln.startswith(field)), "")


def _rebuild(tree: Path, patch: Patch, parent: str, index: dict[str, str]) -> str:
    """The commit `make apply` makes of patch on parent, in a scratch index."""
    where = patch.name
    diff = patch.diff
    git(
        tree,
        "apply",
        "--cached",
        "--whitespace=nowarn",
        "-",
        input=diff,
        env=index,
        where=where,
    )
    files = git(tree, "write-tree", env=index, where=where).strip()
    who = git_identity(patch.author, patch.email, patch.date)
    return git(
        tree,
        *("commit-tree", files, "-p", parent, "-F", "-"),
        input=patch.message,
        env={**index, **who},
        where=where,
    ).strip()


def _difference(tree: Path, commit: str, rebuilt: str) -> str | None:
    """How rebuilt differs from commit in message, files or author."""
    (want, _, want_message), (got, _, got_message) = (
        git(tree, "cat-file", "commit", c).partition("\n\n") for c in (commit, rebuilt)
    )
    if want_message != got_message:
        return f"{_why_message_differs(want_message, got_message)}; {REWORD}"
    if _header(want, "tree ") != _header(got, "tree "):
        return "its patch would not give back its files"
    if _header(want, "author ") != _header(got, "author "):
        return (
            f"its author {_header(want, 'author ')!r} would come back as "
            f"{_header(got, 'author ')!r}; set one a mail keeps (`git commit "
            "--amend --author='Name <email>'`) and refresh again"
        )
    return None


def check_round_trip(tree: Path, tag: str, exported: list[Path], scratch: Path) -> None:
    """Each exported file, read back and applied to its parent, gives its
    commit's files, author and message; refuse the first that does not."""
    commits = _commits(tree, tag)
    if len(commits) != len(exported):
        raise ToolError(f"{tree}: format-patch wrote {len(exported)} patches")
    index = {"GIT_INDEX_FILE": str(scratch / "index")}
    git(tree, "read-tree", tag, env=index)
    parent = git(tree, "rev-parse", f"{tag}^{{commit}}").strip()
    for (commit, name), path in zip(commits, exported):
        where = f"{tree}: commit {name}"
        header, _, message = git(tree, "cat-file", "commit", commit).partition("\n\n")
        if not message.strip():
            raise ToolError(f"{where} has an empty message; {REWORD}. {UNCHANGED}")
        if re.search("[\udc80-\udcff]", message) or "\nencoding " in header:
            raise ToolError(f"{where}: its message is not UTF-8; {REWORD}. {UNCHANGED}")
        patch = read_patch(SeriesEntry(where, path, 0), where=where)
        rebuilt = _rebuild(tree, patch, parent, index)
        problem = _difference(tree, commit, rebuilt)
        if problem:
            raise ToolError(f"{where}: {problem}. {UNCHANGED}")
        parent = rebuilt


def stage_export(
    tree: Path, tag: str, patches: Path, build: Path
) -> tuple[Path, list[str], bool]:
    """patches/ as the commits above tag make it, built in a temp dir.

    Returns the directory, the exported names, and whether the series
    comments could all be kept. Nothing in patches/ is touched.
    """
    _check_exportable(tree, tag)
    if patches.is_dir():  # refresh reads and replaces files: none may lead out
        within(patches, *patches.rglob("*"))
    stage = fsops.new_tmp_dir(build, "patches-")
    out = stage / "patches"
    if patches.is_dir():
        shutil.copytree(patches, out, symlinks=True)
    else:
        out.mkdir()
    exported = stage / "format-patch"
    git(tree, "format-patch", *FORMAT_PATCH_OPTS, "-o", str(exported), f"{tag}..HEAD")
    new = sorted(exported.glob("*.patch"))
    check_round_trip(tree, tag, new, stage)
    series = patches / "series"
    old_text = read_utf8(series) if series.is_file() else ""
    names = [p.name for p in new]
    for line in series_lines(old_text):
        if line.name and line.name not in names and not series_name_problem(line.name):
            (out / line.name).unlink(missing_ok=True)
    for p in [*new, exported / "series"]:
        (out / p.name).unlink(missing_ok=True)  # a link there is replaced, not followed
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
    pin: Pin,
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
        raise ToolError(
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
    shutil.rmtree(out.parent, ignore_errors=True)  # the scratch index
    return len(names), keep, kept_comments


def _series_names(patches: Path) -> list[str]:
    return [e.name for e in read_series(patches)]

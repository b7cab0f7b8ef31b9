"""Write build/pr/: the series as `git format-patch --cover-letter` lays it out.

    build/pr/0000-cover-letter.patch     what changes and why, the benchmark
                                         figures docs/measurements.md records,
                                         aiohttp's own test counts (junit),
                                         the changelog draft
    build/pr/0001-*.patch ...            one mail per commit
    build/pr/aiohttp-connect-timeout.mbox  the patches without the cover
                                         letter: `git am` applies it as is

With SERIES=forward (AIOHTTP_SERIES), the same for the forward series in
build/forward/pr/, its mbox aiohttp-connector-races.mbox. Upstream names
a changelog fragment after an issue or a PR; a fix with no upstream issue
has a `CHANGES/+name.type.rst` placeholder in the series, and --pr-number
(make pr PR_NUMBER=...) renames each to `<number>.type.rst` in the export
once the PR has its number.

The mails come from the sender (--name/--email, else git config
user.name/user.email); each commit keeps the series' author, which git
format-patch puts in an in-body From: line when it differs. The series'
downstream DEP-3 fields (Bug, Forwarded, Last-Update, Applied-Upstream,
Origin) stay in patches/ and are left out of the exported messages. The
series has no packaging-only patches (the wheel's version label is set at
build time), so every commit is exported.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools import fsops
from tools.cli import reports_errors
from tools.dep3 import strip_downstream
from tools.fragments import aiohttp_draft
from tools.junit import read_junit
from tools.measurements import section
from tools.project import (
    CHECKOUT,
    MEASUREMENTS,
    ROOT,
    SERIES,
    SERIES_BUILD,
    UPSTREAM_DESELECT,
    Pin,
    ToolError,
    git,
    git_identity,
    load_pin,
    require_checkout,
    within,
)

OUT = SERIES_BUILD / "pr"
# What make bench (either mode) and make bench-load record in MEASUREMENTS.
BENCH_SECTIONS = ("bench-instructions", "bench-walltime", "bench-load")
UPSTREAM_RESULTS = SERIES_BUILD / "upstream"
# a changelog fragment with no upstream issue yet: CHANGES/+name.type.rst
PLACEHOLDER = re.compile(r"^CHANGES/\+[^/]+\.(?P<type>[a-z]+)\.rst$")


class PrError(ToolError):
    pass


@dataclass(frozen=True)
class Letter:
    """What a series' export says and is called."""

    summary: str  # the subject line, a blank line, then what and why
    mbox: str
    branch: str  # the PR's branch in the instructions
    benchmarks: bool  # the recorded benchmarks measure this series


MAIN_SUMMARY = """\
Move the connect timeout into BaseConnector.connect (#9598)

ClientSession._request wrapped every BaseConnector.connect() call in
ceil_timeout(timeout.connect, ...), even when the connector hands back a
pooled keep-alive connection at once. That costs an asyncio timeout
context per request and, with ClientTimeout.connect set, a timer armed
and cancelled per request.

Only two branches of connect() can block: waiting for a free slot
(limit, limit_per_host) and creating a connection. This series applies
the timeout around those two inside the connector; taking a pooled
connection (when no one is queued for the key) runs with no timeout
context at all. ConnectionTimeoutError, ceil_threshold rounding, traces,
limits and cleanup on error and cancellation are unchanged.

A connector subclass that replaces connect() without calling the base
implementation now has to apply the connect timeout itself; the
changelog fragment says how.
"""

FORWARD_SUMMARY = """\
Fix the races of BaseConnector's connection slots and waiters

With limit or limit_per_host reached, BaseConnector.connect() queues the
requests that find no free slot, and each release wakes one of them. Four
things still go wrong there, each shown by the tests its commit adds:

- a woken request that gives up before it runs (cancelled, or its connect
  timeout fires together with the release, or a queued trace callback
  fails) takes the wake-up with it: the requests behind it wait until
  their own timeout (the class of #9670);
- a trace callback that fails in create_end or reuseconn leaves the
  connection the request got open for good;
- a request that asks again just after its response ended (or a newcomer
  arriving when a woken request gives up) takes the slot, or the pooled
  connection, ahead of the request the release woke;
- closing the connector fails the queued requests with CancelledError, as
  if their tasks had been cancelled, instead of ClientConnectionError.

Nothing changes for a request that gets a pooled connection without
waiting.
"""

LETTERS = {
    "main": Letter(
        MAIN_SUMMARY, "aiohttp-connect-timeout.mbox", "connect-timeout", True
    ),
    "forward": Letter(
        FORWARD_SUMMARY, "aiohttp-connector-races.mbox", "connector-races", False
    ),
}
LETTER = LETTERS[SERIES]
MBOX = LETTER.mbox


def upstream_summary(results: Path = UPSTREAM_RESULTS) -> str:
    """Counts from the junit files `make test` / `make test-upstream` wrote,
    in pytest's words: passed, failed, skipped and xfailed apart."""
    lines = []
    for xml in sorted(results.glob("*.xml")):
        lines.append(f"- {xml.stem}: {read_junit(xml).summary()}")
    return "\n".join(lines) or "- not run yet: `make test` or `make test-upstream`"


def benchmark_figures(doc: Path = MEASUREMENTS) -> str:
    """The benchmark sections of docs/measurements.md as recorded there (date,
    machine, command and figures), or what to run when there are none."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    found = [section(text, name) for name in BENCH_SECTIONS]
    recorded = [figures for figures in found if figures]
    return "\n\n".join(recorded) or "Not measured yet: run `make bench`."


def cover_blurb(pin: Pin, tree: Path = CHECKOUT, letter: Letter = LETTER) -> str:
    n_deselected = sum(
        1
        for line in UPSTREAM_DESELECT.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    bench = [
        f"Benchmarks (pristine {pin.version} vs this series, same machine, same run)",
        "-" * 72,
        benchmark_figures(),
        "",
    ]
    deselect = os.path.relpath(UPSTREAM_DESELECT, ROOT)
    return "\n".join(
        [
            letter.summary.split("\n", 2)[2].rstrip(),
            "",
            *(bench if letter.benchmarks else []),
            "aiohttp's own tests on the patched tree",
            "---------------------------------------",
            upstream_summary(),
            f"({n_deselected} environment-bound tests deselected, each with its "
            f"reason in {deselect}; the same list passes on {pin.version}.)",
            "",
            "Changelog draft",
            "---------------",
            aiohttp_draft(tree).strip(),
        ]
    )


def git_config(key: str) -> str:
    """The user's own git config (project.git hides it on purpose)."""
    done = subprocess.run(
        ["git", "config", "--get", key], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip()


def sender(name: str | None = None, email: str | None = None) -> tuple[str, str]:
    """Who sends the PR: the arguments, else git config user.name/user.email."""
    name = name or git_config("user.name")
    email = email or git_config("user.email")
    if not name or not email:
        raise PrError(
            "no sender identity: set `git config user.name` and "
            "`git config user.email`, or run "
            "`make pr PR_NAME='Your Name' PR_EMAIL=you@example.org`"
        )
    return checked_sender(name, email)


def checked_sender(name: str, email: str) -> tuple[str, str]:
    """Refuse what a mail's From: cannot carry as typed."""
    if re.search(r"[<>\x00-\x1f\x7f]", name):
        raise PrError(f"the sender's name {name!r} holds <, > or a control character")
    if not re.fullmatch(r"[^\s<>@\x00-\x1f\x7f]+@[^\s<>@\x00-\x1f\x7f]+", email):
        raise PrError(f"the sender's email {email!r} is not an address like a@b.org")
    return name, email


@contextmanager
def whole_dir(out: Path) -> Iterator[tuple[Path, Path]]:
    """(new, work): fill new, and it replaces out whole when the block ends
    (one exchange where the kernel has it); work is scratch beside it.
    Both live in out's parent, inside the project, and are gone after the
    block however it ends (a SIGTERM too: main makes it an exit); what a
    SIGKILL leaves, `make clean` removes (build/.pr.*)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        new = work / out.name
        new.mkdir()
        yield new, work
        if not out.exists():
            os.rename(new, out)
        elif not fsops.exchange(new, out):
            os.rename(out, work / "old")
            os.rename(new, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def numbered_fragments(
    repo: Path, tree_id: str, number: int, names: dict[str, str]
) -> str:
    """tree_id with each placeholder fragment (CHANGES/+name.type.rst)
    renamed to CHANGES/<number>.type[.k].rst, as upstream's CHANGES/README
    asks once the PR has its number. names maps each placeholder to its new
    name across the commits (a fragment added once stays in the later ones)."""
    moves = []
    for line in git(repo, "ls-tree", "-r", tree_id, "--", "CHANGES").splitlines():
        meta, path = line.split("\t", 1)
        found = PLACEHOLDER.match(path)
        if found is None:
            continue
        if path not in names:
            taken = set(names.values())
            n, new = 0, f"CHANGES/{number}.{found['type']}.rst"
            while new in taken:
                n += 1
                new = f"CHANGES/{number}.{found['type']}.{n}.rst"
            names[path] = new
        mode, _, blob = meta.split()
        moves += [f"0 {'0' * 40}\t{path}", f"{mode} {blob}\t{names[path]}"]
    if not moves:
        return tree_id
    index = {"GIT_INDEX_FILE": str(repo / ".git" / "pr-fragments.index")}
    git(repo, "read-tree", tree_id, env=index)
    git(repo, "update-index", "--index-info", env=index, input="\n".join(moves) + "\n")
    return git(repo, "write-tree", env=index).strip()


def without_dep3(
    tree: Path, base: str, repo: Path, pr_number: int | None = None
) -> str:
    """Recreate base..HEAD of tree in repo with the downstream DEP-3 fields
    stripped from each message (and the placeholder fragments numbered, with
    pr_number); authors, dates and the rest of the trees stay. Returns the
    new HEAD. repo shares tree's objects, so the checkout is not touched."""
    git(repo.parent, "clone", "-q", "--shared", "--no-checkout", str(tree), str(repo))
    fmt = "%T%x00%an%x00%ae%x00%aD%x00%cn%x00%ce%x00%cD%x00%B"
    head = git(repo, "rev-parse", base).strip()
    names: dict[str, str] = {}
    for commit in git(repo, "rev-list", "--reverse", f"{base}..HEAD").split():
        raw = git(repo, "log", "-1", f"--format={fmt}", commit)
        tree_id, an, ae, ad, cn, ce, cd, message = raw.split("\0", 7)
        if pr_number is not None:
            tree_id = numbered_fragments(repo, tree_id, pr_number, names)
        who = {
            **git_identity(cn, ce, cd, roles=("COMMITTER",)),
            **git_identity(an, ae, ad, roles=("AUTHOR",)),  # who may differ
        }
        message = strip_downstream(message.rstrip("\n") + "\n")
        head = git(
            repo, "commit-tree", tree_id, "-p", head, "-F", "-", env=who, input=message
        ).strip()
    return head


def export_pr(
    out: Path = OUT,
    tree: Path = CHECKOUT,
    from_: tuple[str, str] | None = None,
    pin: Pin | None = None,
    pr_number: int | None = None,
    letter: Letter = LETTER,
) -> Path:
    """out/: 0000-cover-letter.patch, one file per patch, and the mbox of
    the patches alone (what `git am` applies with no flags)."""
    pin = pin or load_pin()
    name, email = from_ or sender()
    # --from sets the patches' From:, the committer ident the cover letter's
    as_sender = {k: v for k, v in git_identity(name, email).items() if "COMMITTER" in k}
    require_checkout(tree)
    if not git(tree, "rev-list", f"{pin.tag}..HEAD").strip():
        raise ToolError(f"{tree}: no commits above {pin.tag} to export")
    with whole_dir(out) as (new, work):
        head = without_dep3(tree, pin.tag, work / "repo", pr_number)
        git(
            work / "repo",
            "format-patch",
            "--quiet",
            "--cover-letter",
            "--numbered",
            "--zero-commit",
            "--no-signature",
            "--full-index",
            "--stat=72",
            f"--from={name} <{email}>",
            "-o",
            str(new),
            f"{pin.tag}..{head}",
            env=as_sender,
        )
        (cover,) = new.glob("0000-cover-letter.patch")
        subject, _, _ = letter.summary.partition("\n")
        text = cover.read_text().replace("*** SUBJECT HERE ***", subject, 1)
        blurb = cover_blurb(pin, tree, letter)
        cover.write_text(text.replace("*** BLURB HERE ***", blurb, 1))
        mails = sorted(
            p for p in new.glob("[0-9][0-9][0-9][0-9]-*.patch") if p != cover
        )
        (new / letter.mbox).write_text("".join(p.read_text() for p in mails))
    return out / letter.mbox


def pr_number(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 10**7:
        raise argparse.ArgumentTypeError(f"{text!r} is not a PR number")
    return int(text)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pr", description=__doc__)
    parser.add_argument("--name", help="sender's name (default: git config user.name)")
    parser.add_argument(
        "--email", help="sender's email (default: git config user.email)"
    )
    parser.add_argument(
        "--pr-number",
        type=pr_number,
        help="the upstream PR's number: name the placeholder fragments after it",
    )
    args = parser.parse_args(argv)
    # a SIGTERM ends the run like an error: whole_dir's cleanup runs
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    from_ = sender(args.name, args.email)  # the likelier mistake: say it first
    within(ROOT, OUT, CHECKOUT)
    pin = load_pin()
    mbox = export_pr(from_=from_, pin=pin, pr_number=args.pr_number)
    n = len(re.findall(r"^Subject: \[PATCH [1-9]\d*/\d+\]", mbox.read_text(), re.M))
    out = mbox.parent.relative_to(ROOT)
    print(f"""wrote {out}/: 0000-cover-letter.patch, {n} patches, and {MBOX} (the
patches without the cover letter)

Mail it:    git send-email --to=<list> {out}/*.patch
Apply it:   git am {out}/{MBOX}    (on aiohttp {pin.tag})
Open a PR from a fork: in a clone of aio-libs/aiohttp, with your fork as
remote `fork`:

    git switch -c {LETTER.branch} {pin.tag}
    git am {mbox}
    git push fork {LETTER.branch}

and paste the cover letter's text as the PR description.""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

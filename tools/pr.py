"""Write build/pr/: the series as `git format-patch --cover-letter` lays it out.

    build/pr/0000-cover-letter.patch     what changes and why, the benchmark
                                         figures docs/measurements.md records,
                                         aiohttp's own test counts (junit),
                                         the changelog draft
    build/pr/0001-*.patch ...            one mail per commit
    build/pr/aiohttp-connect-timeout.mbox  the patches without the cover
                                         letter: `git am` applies it as is

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
from pathlib import Path

from tools import fsops
from tools.cli import reports_errors
from tools.dep3 import strip_downstream
from tools.fragments import aiohttp_draft
from tools.junit import read_junit
from tools.measurements import section
from tools.project import (
    BUILD,
    CHECKOUT,
    MEASUREMENTS,
    ROOT,
    Pin,
    ToolError,
    git,
    git_identity,
    load_pin,
    require_checkout,
    within,
)

OUT = BUILD / "pr"
# What make bench (either mode) and make bench-load record in MEASUREMENTS.
BENCH_SECTIONS = ("bench-instructions", "bench-walltime", "bench-load")
UPSTREAM_RESULTS = BUILD / "upstream"
DESELECT = ROOT / "tests" / "upstream-deselect.txt"
MBOX = "aiohttp-connect-timeout.mbox"


class PrError(ToolError):
    pass


SUMMARY = """\
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


def cover_blurb(pin: Pin, tree: Path = CHECKOUT) -> str:
    bench = benchmark_figures()
    n_deselected = sum(
        1
        for line in DESELECT.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return "\n".join(
        [
            SUMMARY.split("\n", 2)[2].rstrip(),
            "",
            f"Benchmarks (pristine {pin.version} vs this series, same machine, "
            "same run)",
            "-" * 72,
            bench,
            "",
            "aiohttp's own tests on the patched tree",
            "---------------------------------------",
            upstream_summary(),
            f"({n_deselected} environment-bound tests deselected, each with its "
            "reason in tests/upstream-deselect.txt; the same list passes on "
            f"{pin.version}.)",
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


def without_dep3(tree: Path, base: str, repo: Path) -> str:
    """Recreate base..HEAD of tree in repo with the downstream DEP-3 fields
    stripped from each message; authors, dates and trees stay. Returns the
    new HEAD. repo shares tree's objects, so the checkout is not touched."""
    git(repo.parent, "clone", "-q", "--shared", "--no-checkout", str(tree), str(repo))
    fmt = "%T%x00%an%x00%ae%x00%aD%x00%cn%x00%ce%x00%cD%x00%B"
    head = git(repo, "rev-parse", base).strip()
    for commit in git(repo, "rev-list", "--reverse", f"{base}..HEAD").split():
        raw = git(repo, "log", "-1", f"--format={fmt}", commit)
        tree_id, an, ae, ad, cn, ce, cd, message = raw.split("\0", 7)
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
        head = without_dep3(tree, pin.tag, work / "repo")
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
        subject, _, _ = SUMMARY.partition("\n")
        text = cover.read_text().replace("*** SUBJECT HERE ***", subject, 1)
        cover.write_text(text.replace("*** BLURB HERE ***", cover_blurb(pin, tree), 1))
        mails = sorted(
            p for p in new.glob("[0-9][0-9][0-9][0-9]-*.patch") if p != cover
        )
        (new / MBOX).write_text("".join(p.read_text() for p in mails))
    mbox = out / MBOX
    return mbox


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pr", description=__doc__)
    parser.add_argument("--name", help="sender's name (default: git config user.name)")
    parser.add_argument(
        "--email", help="sender's email (default: git config user.email)"
    )
    args = parser.parse_args(argv)
    # a SIGTERM ends the run like an error: whole_dir's cleanup runs
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    from_ = sender(args.name, args.email)  # the likelier mistake: say it first
    within(ROOT, OUT, CHECKOUT)
    pin = load_pin()
    mbox = export_pr(from_=from_, pin=pin)
    n = len(re.findall(r"^Subject: \[PATCH [1-9]\d*/\d+\]", mbox.read_text(), re.M))
    out = mbox.parent.relative_to(ROOT)
    print(f"""wrote {out}/: 0000-cover-letter.patch, {n} patches, and {MBOX} (the
patches without the cover letter)

Mail it:    git send-email --to=<list> {out}/*.patch
Apply it:   git am {out}/{MBOX}    (on aiohttp {pin.tag})
Open a PR from a fork: in a clone of aio-libs/aiohttp, with your fork as
remote `fork`:

    git switch -c connect-timeout {pin.tag}
    git am {mbox}
    git push fork connect-timeout

and paste the cover letter's text as the PR description.""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

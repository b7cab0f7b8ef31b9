"""Write build/pr/: the series as one format-patch mbox with a cover letter.

The cover letter carries what a reviewer asks first: what changes and why,
the latest benchmark table, the changelog draft and the result of
aiohttp's own tests. The series has no packaging-only patches (the wheel's
version label is set at build time), so every commit is exported.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from tools import patchq, sdist
from tools.changelog import aiohttp_draft
from tools.cli import reports_errors
from tools.junit import read_junit

ROOT = sdist.ROOT
OUT = ROOT / "build" / "pr"
BENCH_REPORT = ROOT / "build" / "bench" / "report.md"
UPSTREAM_RESULTS = ROOT / "build" / "upstream"
MBOX = "aiohttp-connect-timeout.mbox"

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
    """Counts from the junit files `make test` / `make test-upstream` wrote."""
    lines = []
    for xml in sorted(results.glob("*.xml")):
        lines.append(f"- {xml.stem}: {read_junit(xml).summary()}")
    return "\n".join(lines) or "- not run yet: `make test` or `make test-upstream`"


def cover_blurb() -> str:
    bench = (
        BENCH_REPORT.read_text().strip()
        if BENCH_REPORT.exists()
        else "Not measured yet: run `make bench`."
    )
    deselect = ROOT / "tests" / "upstream-deselect.txt"
    n_deselected = sum(
        1
        for line in deselect.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return "\n".join(
        [
            SUMMARY.split("\n", 2)[2].rstrip(),
            "",
            "Benchmarks (pristine 3.10.10 vs this series, same machine, same run)",
            "--------------------------------------------------------------------",
            bench,
            "",
            "aiohttp's own tests on the patched tree",
            "---------------------------------------",
            upstream_summary(),
            f"({n_deselected} environment-bound tests deselected, each with its "
            "reason in tests/upstream-deselect.txt; the same list passes on 3.10.10.)",
            "",
            "Changelog draft",
            "---------------",
            aiohttp_draft().strip(),
        ]
    )


def export_pr(out: Path = OUT, tree: Path = patchq.CHECKOUT) -> Path:
    pin = sdist.load_pin()
    if not patchq.git(tree, "rev-list", f"{pin.tag}..HEAD").strip():
        raise patchq.QueueError(f"{tree}: no commits above {pin.tag} to export")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    mbox = patchq.git(
        tree,
        "format-patch",
        "--stdout",
        "--cover-letter",
        "--numbered",
        "--zero-commit",
        "--no-signature",
        "--full-index",
        "--stat=72",
        f"{pin.tag}..HEAD",
    )
    subject, _, _ = SUMMARY.partition("\n")
    mbox = mbox.replace("*** SUBJECT HERE ***", subject, 1)
    mbox = mbox.replace("*** BLURB HERE ***", cover_blurb(), 1)
    (out / MBOX).write_text(mbox)
    return out / MBOX


@reports_errors
def main() -> int:
    mbox = export_pr()
    pin = sdist.load_pin()
    n = len(re.findall(r"^Subject: \[PATCH [1-9]\d*/\d+\]", mbox.read_text(), re.M))
    import_commit = patchq.git(patchq.CHECKOUT, "rev-parse", pin.tag).strip()
    print(f"""wrote {mbox.relative_to(ROOT)}: cover letter + {n} patches

Review or mail it:   git send-email --to=<list> {mbox.relative_to(ROOT)}
Open a PR from a fork: in a clone of aio-libs/aiohttp with your fork as
remote `fork`, replay the checkout's branch onto upstream's tag (the
checkout is rooted on the sdist import, not on upstream's history):

    git fetch {patchq.CHECKOUT} {patchq.BRANCH}
    git switch -c connect-timeout {pin.tag}
    git cherry-pick {import_commit[:12]}..FETCH_HEAD
    git push fork connect-timeout

(or, instead of the fetch and the cherry-pick: git am --empty=drop {mbox};
--empty=drop passes over the cover letter)""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

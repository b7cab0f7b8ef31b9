"""make pr: the format-patch --cover-letter layout, mails from the sender,
commits by the series' authors without the DEP-3 bookkeeping, and an mbox
that plain `git am` applies to the pristine release, giving the patched
tree. On a synthetic checkout; tests/integration/test_pr_real.py runs the
real series."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.gitrepo import commit, files_of, git_am, log, pristine_repo
from tools import dep3, measurements, pr
from tools.project import Pin, ToolError

CODE = Path(__file__).resolve().parents[2]  # where `python -m tools.pr` runs
PIN = Pin("aiohttp", "9.9.9", "aiohttp-9.9.9.tar.gz", "0" * 64)  # synthetic
SENDER = ("Pat Sender", "pat@example.org")
# Every downstream field, and a trailer upstream keeps.
DEP3_FIELDS = """\
Bug: https://github.com/aio-libs/aiohttp/issues/9598
Forwarded: no
Last-Update: 2026-01-01
Applied-Upstream: 3.10.11, https://github.com/aio-libs/aiohttp/pull/9673
Signed-off-by: Test Author <test@localhost>"""
FRAGMENT = "Moved the connect timeout into ``BaseConnector.connect``.\n"


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """A checkout with two commits above the tag, the first with DEP-3 fields."""
    tree = pristine_repo(tmp_path / "checkout", PIN)
    commit(
        tree,
        f"Mark the version\n\nWhy: to see it in the checkout.\n\n{DEP3_FIELDS}\n",
        {
            "aiohttp/__init__.py": f'__version__ = "{PIN.version}+test"\n',
            "CHANGES/9598.breaking.rst": FRAGMENT,
        },
    )
    commit(
        tree,
        "Rename the access logger\n",
        {"aiohttp/connector.py": "def connect():\n    return 2\n"},
    )
    return tree


def test_git_am_applies_the_mbox_with_no_flags(series: Path, tmp_path: Path) -> None:
    out = tmp_path / "pr"
    pr.export_pr(out=out, tree=series, from_=SENDER, pin=PIN)
    tree = pristine_repo(tmp_path / "pristine", PIN)
    done = git_am(tree, sorted(out.glob("*.mbox")))  # the shell's glob
    assert done.returncode == 0, done.stdout + done.stderr
    assert files_of(tree) == files_of(series)
    # each commit keeps the series' author and date, not the sender's
    authorship = "%an <%ae> %aI %s"
    assert log(tree, "HEAD~2..", authorship) == log(series, f"{PIN.tag}..", authorship)
    first, second = log(tree, "HEAD~2..", "%B")
    assert dep3.fields(first) == {}
    assert "Why: to see it in the checkout." in first
    assert first.rstrip().endswith("Signed-off-by: Test Author <test@localhost>")
    assert second.strip() == "Rename the access logger"
    # the checkout's commits keep them: only the export leaves them out
    kept = dep3.fields(log(series, f"{PIN.tag}..", "%B")[0])
    assert kept["Forwarded"] == ["no"] and kept["Last-Update"] == ["2026-01-01"]


def test_layout_is_format_patch_cover_letter_from_the_sender(
    series: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pr"
    mbox = pr.export_pr(out=out, tree=series, from_=SENDER, pin=PIN)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "0000-cover-letter.patch",
        "0001-Mark-the-version.patch",
        "0002-Rename-the-access-logger.patch",
        pr.MBOX,
    ]
    assert mbox.read_text() == "".join((out / n).read_text() for n in names[1:3]), (
        "the mbox is the patches, in order, without the cover letter"
    )
    cover = (out / names[0]).read_text()
    assert "\nFrom: Pat Sender <pat@example.org>\n" in cover
    assert "Subject: [PATCH 0/2] Move the connect timeout" in cover
    assert "*** BLURB HERE ***" not in cover and "*** SUBJECT" not in cover
    for name in names[1:3]:
        mail = (out / name).read_text()
        head, _, body = mail.partition("\n\n")
        assert "\nFrom: Pat Sender <pat@example.org>\n" in head + "\n"
        assert body.startswith("From: Test Author <test@localhost>\n")
        assert "Last-Update" not in mail and "Forwarded" not in mail


def test_cover_letter_names_the_pin_and_carries_the_changelog_draft(
    series: Path, tmp_path: Path
) -> None:
    pr.export_pr(out=tmp_path / "pr", tree=series, from_=SENDER, pin=PIN)
    text = (tmp_path / "pr" / "0000-cover-letter.patch").read_text()
    assert f"Benchmarks (pristine {PIN.version} vs this series" in text
    assert f"the same list passes on {PIN.version}.)" in text
    for heading in ("aiohttp's own tests on the patched tree", "Changelog draft"):
        assert f"\n{heading}\n" in text
    draft = text.split("\nChangelog draft\n", 1)[1]
    assert "Removals and backward incompatible breaking changes" in draft
    assert "Moved the connect timeout into ``BaseConnector.connect``." in draft


def test_nothing_above_the_tag_or_no_checkout_is_one_clear_error(
    tmp_path: Path,
) -> None:
    tree = pristine_repo(tmp_path / "pristine", PIN)
    with pytest.raises(ToolError, match=f"no commits above {PIN.tag} to export"):
        pr.export_pr(out=tmp_path / "pr", tree=tree, from_=SENDER, pin=PIN)
    with pytest.raises(ToolError, match="Run `make apply` first"):
        pr.export_pr(out=tmp_path / "pr", tree=tmp_path / "none", from_=SENDER, pin=PIN)
    assert not (tmp_path / "pr").exists()


def test_pr_needs_a_sender(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "EMAIL"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "tools.pr", "--name", "Only A Name"],
        cwd=CODE,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: no sender identity: set `git config")
    assert len(done.stderr.splitlines()) == 1
    assert pr.sender("A", "a@example.org") == ("A", "a@example.org")


OUTCOMES = """\
import pytest

def test_a(): pass
def test_b(): pass
def test_c(): pytest.skip("no")
@pytest.mark.xfail(reason="known", strict=True)
def test_d(): assert False
def test_e(): assert False
"""


def counts(summary: str) -> dict[str, int]:
    """{"passed": 2, ...} of "2 passed, 1 skipped" (either's order)."""
    return {w: int(n) for n, w in (part.split() for part in summary.split(", "))}


def test_cover_letter_counts_are_pytests_own(tmp_path: Path) -> None:
    """passed, failed, skipped and xfailed apart, as pytest's summary says."""
    (tmp_path / "test_outcomes.py").write_text(OUTCOMES)
    results = tmp_path / "upstream"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            f"--junitxml={results / 'some-modules.xml'}",
            "test_outcomes.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = done.stdout.strip().splitlines()[-1].strip("= ").rsplit(" in ", 1)[0]
    assert counts(said) == {"passed": 2, "failed": 1, "skipped": 1, "xfailed": 1}
    name, _, ours = pr.upstream_summary(results).partition(": ")
    assert name == "- some-modules"
    assert ours == "2 passed, 1 failed, 1 skipped, 1 xfailed"
    assert counts(ours) == counts(said)


def test_cover_letter_takes_the_figures_docs_measurements_records(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "measurements.md"
    assert pr.benchmark_figures(doc) == "Not measured yet: run `make bench`."
    measurements.record("audit", "0 overrides", "make audit", path=doc)
    assert pr.benchmark_figures(doc) == "Not measured yet: run `make bench`."
    table = "| benchmark | pristine | patched |\n|---|---:|---:|\n| a) | 100 | 97 |"
    measurements.record("bench-instructions", table, "make bench", "Bench", path=doc)
    load = "| median | 1.5 ms |"
    measurements.record("bench-load", load, "make bench-load", path=doc)
    figures = pr.benchmark_figures(doc)
    assert figures.startswith("## Bench\n\n- date: ")
    assert "- command: `make bench`" in figures and table in figures
    assert figures.index(table) < figures.index(load)
    assert "0 overrides" not in figures and "<!--" not in figures


@pytest.fixture
def placeholders(tmp_path: Path) -> Path:
    """Two commits, each adding a fragment named `+...` (no upstream issue
    yet), and one numbered after its upstream issue."""
    tree = pristine_repo(tmp_path / "checkout", PIN)
    commit(
        tree,
        "Fix the first race\n",
        {"CHANGES/+first.bugfix.rst": FRAGMENT, "CHANGES/9670.bugfix.rst": FRAGMENT},
    )
    commit(tree, "Fix the second race\n", {"CHANGES/+second.bugfix.rst": FRAGMENT})
    return tree


def test_placeholder_fragments_take_the_pr_number(
    placeholders: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pr"
    pr.export_pr(out=out, tree=placeholders, from_=SENDER, pin=PIN, pr_number=12345)
    tree = pristine_repo(tmp_path / "pristine", PIN)
    done = git_am(tree, sorted(out.glob("*.mbox")))
    assert done.returncode == 0, done.stdout + done.stderr
    fragments = sorted(p.name for p in (tree / "CHANGES").iterdir())
    # upstream's CHANGES/README: the number of an issue or the PR, then the
    # type, and a sequence number for a second fragment of the same kind
    assert fragments == [
        ".gitignore",
        "12345.bugfix.1.rst",
        "12345.bugfix.rst",
        "9670.bugfix.rst",
    ]
    assert (tree / "CHANGES" / "12345.bugfix.rst").read_text() == FRAGMENT
    # the same rename in both commits: the first one's fragment stays put
    first = subprocess.run(
        ["git", "-C", str(tree), "show", "--stat", "--format=", "HEAD~1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CHANGES/12345.bugfix.rst" in first
    # without a number the placeholders stay, for the sender to decide
    plain = tmp_path / "plain"
    pr.export_pr(out=plain, tree=placeholders, from_=SENDER, pin=PIN)
    assert "CHANGES/+first.bugfix.rst" in (plain / pr.MBOX).read_text()


@pytest.mark.parametrize("number", ["0", "-1", "12a", "1" * 8, "$(id)"])
def test_a_pr_number_must_be_a_number(number: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.pr", "--pr-number", number],
        cwd=CODE,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "is not a PR number" in done.stderr


def test_the_forward_series_has_its_own_letter(series: Path, tmp_path: Path) -> None:
    out = tmp_path / "pr"
    letter = pr.LETTERS["forward"]
    mbox = pr.export_pr(out=out, tree=series, from_=SENDER, pin=PIN, letter=letter)
    assert mbox.name == "aiohttp-connector-races.mbox"
    cover = (out / "0000-cover-letter.patch").read_text()
    assert "Subject: [PATCH 0/2] Fix the races of BaseConnector's" in cover
    assert "Benchmarks" not in cover  # the recorded ones measure the main series

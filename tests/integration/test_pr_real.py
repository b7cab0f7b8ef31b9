"""make pr on the real series in build/aiohttp (run after `make apply`):
plain `git am` of the mbox on the pristine sdist gives the checkout's
files, no exported message keeps a downstream DEP-3 field, and the cover
letter numbers the series and carries aiohttp's changelog draft."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.gitrepo import files_of, git_am, log
from tools import dep3, pr, sdist
from tools.junit import read_junit
from tools.measurements import section
from tools.project import (
    CHECKOUT,
    MAIN,
    MEASUREMENTS,
    Pin,
    export_tree,
    git,
    git_identity,
    load_pin,
    require_checkout,
)

SENDER = ("Pat Sender", "pat@example.org")


@pytest.fixture(scope="module")
def pin() -> Pin:
    require_checkout(CHECKOUT)  # fails, not skips: make test runs this after apply
    return load_pin()


@pytest.fixture(scope="module")
def exported(pin: Pin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pr") / "pr"
    pr.export_pr(out=out, tree=CHECKOUT, from_=SENDER, pin=pin)
    return out


def pristine_git(pin: Pin, tree: Path) -> Path:
    """A git init of the pristine sdist, one commit, as a reviewer makes it."""
    sdist.unpack(sdist.fetch(pin), tree)
    (tree / "vendor/llhttp/.git").unlink()
    git(tree, "init", "-q")
    git(tree, "add", "-A", "-f")
    git(tree, "commit", "-q", "-m", "0", env=git_identity("t", "t@localhost"))
    return tree


def test_real_series_applies_with_git_am_and_gives_the_checkout(
    pin: Pin, exported: Path, tmp_path: Path
) -> None:
    tree = pristine_git(pin, tmp_path / "pristine")
    done = git_am(tree, sorted(exported.glob("*.mbox")))
    assert done.returncode == 0, done.stdout + done.stderr
    head = tmp_path / "head"
    export_tree(CHECKOUT, "HEAD", head)
    assert files_of(tree) == files_of(head)
    n = len(git(CHECKOUT, "rev-list", f"{pin.tag}..HEAD").split())
    assert n > 0
    for message in log(tree, f"HEAD~{n}..", "%B"):
        assert not set(dep3.fields(message)) & set(dep3.DOWNSTREAM_FIELDS), message


def test_cover_letter_summarises_and_numbers_the_series(
    pin: Pin, exported: Path
) -> None:
    text = (exported / "0000-cover-letter.patch").read_text()
    n = len(git(CHECKOUT, "rev-list", f"{pin.tag}..HEAD").split())
    subject = pr.LETTER.summary.partition("\n")[0]
    assert f"Subject: [PATCH 0/{n}] {subject}" in text
    for heading in ("aiohttp's own tests", "Changelog draft"):
        assert heading in text
    assert ("Benchmarks" in text) == pr.LETTER.benchmarks
    # each series' own changelog fragments, in towncrier's sections
    section = "Removals and backward" if MAIN else "Bug fixes"
    assert section in text


def test_cover_letter_carries_the_recorded_figures_and_pytests_counts(
    exported: Path,
) -> None:
    text = (exported / "0000-cover-letter.patch").read_text()
    figures = section(MEASUREMENTS.read_text(), "bench-instructions")
    assert figures  # the main series' figures; the forward one's has none
    assert (figures in text) == pr.LETTER.benchmarks
    assert "Not measured yet" not in text
    for xml in sorted(pr.UPSTREAM_RESULTS.glob("*.xml")):
        assert f"- {xml.stem}: {read_junit(xml).summary()}\n" in text

"""make pr: the format-patch --cover-letter layout, mails from the sender,
commits by the series' authors without the DEP-3 bookkeeping, and an mbox
that plain `git am` applies to pristine 3.10.10, giving the patched tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.test_series import GIT_ENV, files_of
from tests.tools.throwaway import LOG_PATCH, ROOT, VERSION_PATCH, Project
from tools import dep3, pr, sdist
from tools.patchq import CHECKOUT, git

SENDER = ("Pat Sender", "pat@example.org")
# The throwaway version patch, with every downstream field and a trailer
# upstream keeps.
DEP3_FIELDS = """\
Bug: https://github.com/aio-libs/aiohttp/issues/9598
Forwarded: no
Last-Update: 2026-01-01
Applied-Upstream: 3.10.11, https://github.com/aio-libs/aiohttp/pull/9673
Signed-off-by: Test Author <test@localhost>"""
MARK_PATCH = VERSION_PATCH.replace("Forwarded: not-needed", DEP3_FIELDS)


def git_am_on_pristine(tmp_path: Path, cached_sdist: Path, mbox_dir: Path) -> Path:
    """`git am build/pr/*.mbox`, no flags, on a git init of the pristine sdist."""
    tree = tmp_path / "pristine"
    sdist.unpack(cached_sdist, tree)
    (tree / "vendor/llhttp/.git").unlink()
    for args in (["init", "-q"], ["add", "-A", "-f"], ["commit", "-q", "-m", "0"]):
        subprocess.run(["git", "-C", str(tree), *args], check=True, env=GIT_ENV)
    mboxes = sorted(str(p) for p in mbox_dir.glob("*.mbox"))  # the shell's glob
    done = subprocess.run(
        ["git", "-C", str(tree), "am", *mboxes],
        capture_output=True,
        text=True,
        env=GIT_ENV,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return tree


def log(tree: Path, rev_range: str, fmt: str) -> list[str]:
    out = subprocess.run(
        [
            "git",
            "-C",
            str(tree),
            "log",
            "--reverse",
            "-z",
            f"--format={fmt}",
            rev_range,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=GIT_ENV,
    ).stdout
    return out.rstrip("\0").split("\0")


@pytest.fixture
def throwaway(project: Project) -> Project:
    project.write_series({"0001-mark.patch": MARK_PATCH, "0002-log.patch": LOG_PATCH})
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    return project


def test_git_am_applies_the_mbox_with_no_flags(
    throwaway: Project, tmp_path: Path, cached_sdist: Path
) -> None:
    out = tmp_path / "pr"
    pr.export_pr(out=out, tree=throwaway.checkout, from_=SENDER)
    tree = git_am_on_pristine(tmp_path, cached_sdist, out)
    assert files_of(tree) == files_of(throwaway.checkout)
    # each commit keeps the series' author and date, not the sender's
    authorship = "%an <%ae> %aI %s"
    assert log(tree, "HEAD~2..", authorship) == log(
        throwaway.checkout, "v3.10.10..", authorship
    )
    first, second = log(tree, "HEAD~2..", "%B")
    assert dep3.fields(first) == {}
    assert "Why: to see it in the checkout." in first
    assert first.rstrip().endswith("Signed-off-by: Test Author <test@localhost>")
    assert second.strip() == "Rename the access logger"
    # the checkout's commits keep them: only the export leaves them out
    kept = dep3.fields(log(throwaway.checkout, "v3.10.10..", "%B")[0])
    assert kept["Forwarded"] == ["no"] and kept["Last-Update"] == ["2026-01-01"]


def test_layout_is_format_patch_cover_letter_from_the_sender(
    throwaway: Project, tmp_path: Path
) -> None:
    out = tmp_path / "pr"
    mbox = pr.export_pr(out=out, tree=throwaway.checkout, from_=SENDER)
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
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: no sender identity: set `git config")
    assert len(done.stderr.splitlines()) == 1
    assert pr.sender("A", "a@example.org") == ("A", "a@example.org")


def test_real_series_applies_with_git_am_and_gives_the_checkout(
    tmp_path: Path, cached_sdist: Path
) -> None:
    out = tmp_path / "pr"
    pr.export_pr(out=out, tree=CHECKOUT, from_=SENDER)
    tree = git_am_on_pristine(tmp_path, cached_sdist, out)
    head = tmp_path / "head"
    head.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(CHECKOUT), "archive", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(head)], input=archive, check=True)
    assert files_of(tree) == files_of(head)
    n = len(git(CHECKOUT, "rev-list", "v3.10.10..HEAD").split())
    for message in log(tree, f"HEAD~{n}..", "%B"):
        assert not set(dep3.fields(message)) & set(dep3.DOWNSTREAM_FIELDS), message


def test_cover_letter_summarises_and_numbers_the_series(tmp_path: Path) -> None:
    pr.export_pr(out=tmp_path / "pr", from_=SENDER)
    text = (tmp_path / "pr" / "0000-cover-letter.patch").read_text()
    n = len(git(CHECKOUT, "rev-list", "v3.10.10..HEAD").split())
    assert f"Subject: [PATCH 0/{n}] Move the connect timeout" in text
    for heading in ("Benchmarks", "aiohttp's own tests", "Changelog draft"):
        assert heading in text
    assert "Removals and backward incompatible breaking changes" in text

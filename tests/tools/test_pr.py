"""make pr: the mbox applies with git am to a pristine tree and gives
exactly build/aiohttp; the cover letter carries what reviewers read.
(`--empty=drop` lets git am pass over the cover letter, which has no diff.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.tools.test_series import GIT_ENV, files_of
from tools import pr, sdist
from tools.patchq import CHECKOUT, git


def test_mbox_applies_with_git_am_and_gives_the_checkout(
    tmp_path: Path, cached_sdist: Path
) -> None:
    mbox = pr.export_pr(out=tmp_path / "pr")
    tree = tmp_path / "pristine"
    sdist.unpack(cached_sdist, tree)
    (tree / "vendor/llhttp/.git").unlink()
    for args in (["init", "-q"], ["add", "-A", "-f"], ["commit", "-q", "-m", "0"]):
        subprocess.run(["git", "-C", str(tree), *args], check=True, env=GIT_ENV)
    subprocess.run(
        ["git", "-C", str(tree), "am", "-q", "--empty=drop", str(mbox)],
        check=True,
        env=GIT_ENV,
    )
    head = tmp_path / "head"
    head.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(CHECKOUT), "archive", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(head)], input=archive, check=True)
    assert files_of(tree) == files_of(head)
    assert os.path.exists(tree / "CHANGES" / "9598.breaking.rst")


def test_cover_letter_summarises_and_numbers_the_series(tmp_path: Path) -> None:
    text = pr.export_pr(out=tmp_path / "pr").read_text()
    n = len(git(CHECKOUT, "rev-list", "v3.10.10..HEAD").split())
    assert f"Subject: [PATCH 0/{n}] Move the connect timeout" in text
    assert "*** BLURB HERE ***" not in text
    for heading in ("Benchmarks", "aiohttp's own tests", "Changelog draft"):
        assert heading in text
    assert "Removals and backward incompatible breaking changes" in text

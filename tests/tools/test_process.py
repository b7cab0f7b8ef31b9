"""tools/process.py's git(): a failure is one line naming the place and why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.process import ToolError, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("one\n")
    return tmp_path


def test_a_failure_names_the_place_the_command_and_gits_words(repo: Path) -> None:
    with pytest.raises(ToolError) as failed:
        git(repo, "checkout", "no-such-branch", where="the checkout")
    message = str(failed.value)
    assert message.startswith("the checkout: `git checkout no-such-branch` failed: ")
    assert "no-such-branch" in message.split("failed: ", 1)[1]
    assert "\n" not in message


def test_a_silent_failure_says_its_exit_status(repo: Path) -> None:
    """Some git commands fail with no word on stderr (diff --quiet)."""
    git(repo, "add", "f")
    (repo / "f").write_text("two\n")
    with pytest.raises(ToolError) as failed:
        git(repo, "diff", "--quiet")
    assert str(failed.value) == f"{repo}: `git diff --quiet` failed: exit status 1"

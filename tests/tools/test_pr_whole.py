"""make pr writes build/pr whole or not at all, from the sender as typed
(issue 19, items 10 and 11). On a throwaway project whose build/aiohttp is
a synthetic checkout; `python -m tools.pr` runs as make runs it.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from tests.tools.gitrepo import commit, pristine_repo
from tests.tools.throwaway import pin_text
from tools import pr
from tools.project import ROOT_VARIABLE, Pin, ToolError

CODE = Path(__file__).resolve().parents[2]
PIN = Pin("aiohttp", "9.9.9", "aiohttp-9.9.9.tar.gz", "0" * 64)
NAME = 'Ann $USER "Q" Lee'
# Signals the process as it starts `git format-patch`: half-way through.
SIGNAL_AT_FORMAT_PATCH = """
import os, signal, sys

def _hook(event, args):
    if event == "subprocess.Popen" and "format-patch" in [str(a) for a in args[1]]:
        os.kill(os.getpid(), int(os.environ["PR_SIGNAL"]))

if os.environ.get("PR_SIGNAL"):
    sys.addaudithook(_hook)
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "upstream-deselect.txt").write_text("")
    (root / "upstream.toml").write_text(pin_text(PIN.version, PIN.sha256))
    tree = pristine_repo(root / "build" / "aiohttp", PIN)
    commit(tree, "Rename the access logger\n", {"aiohttp/log.py": "x = 2\n"})
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SIGNAL_AT_FORMAT_PATCH)
    (tmp_path / "tmp").mkdir()
    return root


def make_pr(root: Path, sig: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        ROOT_VARIABLE: str(root),
        "PYTHONPATH": str(root.parent / "hooks"),
        "TMPDIR": str(root.parent / "tmp"),
        "PR_SIGNAL": str(sig or ""),
    }
    return subprocess.run(
        [sys.executable, "-m", "tools.pr", "--name", NAME, "--email", "a+q@x.org"],
        cwd=CODE,
        env=env,
        capture_output=True,
        text=True,
    )


def files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_a_sigterm_leaves_the_previous_pr_whole(root: Path) -> None:
    done = make_pr(root)
    assert done.returncode == 0, done.stderr
    out = root / "build" / "pr"
    before = files(out)
    assert "0000-cover-letter.patch" in before
    killed = make_pr(root, signal.SIGTERM)
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr
    assert files(out) == before
    assert sorted(p.name for p in (root / "build").iterdir()) == ["aiohttp", "pr"]
    assert list((root.parent / "tmp").iterdir()) == []


def test_what_a_sigkill_leaves_make_clean_removes(root: Path) -> None:
    killed = make_pr(root, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (root / "build" / "pr").exists()
    assert list((root.parent / "tmp").iterdir()) == []
    subprocess.run(
        [sys.executable, "-m", "tools.project", "clean"],
        cwd=CODE,
        env={**os.environ, ROOT_VARIABLE: str(root)},
        check=True,
        capture_output=True,
    )
    assert [p.name for p in (root / "build").iterdir()] == ["aiohttp"]


def test_the_mails_are_from_the_sender_as_typed(root: Path) -> None:
    done = make_pr(root)
    assert done.returncode == 0, done.stderr
    for mail in (root / "build" / "pr").glob("000*.patch"):
        with mail.open("rb") as f:
            sender = email.message_from_binary_file(f, policy=policy.default)["From"]
        (address,) = sender.addresses  # type: ignore[union-attr]
        assert (address.display_name, address.addr_spec) == (NAME, "a+q@x.org")


@pytest.mark.parametrize(
    ("name", "email"),
    [("Ann <ann@x.org>", "a@x.org"), ("Ann\nBcc: x@y", "a@x.org"), ("Ann", "a b@x")],
)
def test_a_sender_a_mail_cannot_carry_is_refused(name: str, email: str) -> None:
    with pytest.raises(ToolError, match="sender's"):
        pr.sender(name, email)

"""The Makefile as a front door (issue 19, items 10 and 16).

`make help` lists every target in one line, with no pin needed; what a
user gives make on the command line reaches the tools as it was typed:
make does not expand it and no shell parses it. A stand-in python records
the arguments each recipe passes.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.tools.throwaway import ROOT, front_door, make

RECORDER = """import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def phony_targets(makefile: str) -> list[str]:
    text = makefile.replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith(".PHONY:")]
    return line.split(":", 1)[1].split()


@pytest.fixture
def front(tmp_path: Path) -> Path:
    """A project of the Makefile and tools; bin/python records its argv."""
    root = front_door(tmp_path / "proj")
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    # A shell stub, not a #! line to sys.executable: a #! line cannot hold
    # the space of a checkout under "/tmp/sp ace/".
    here = shlex.quote(sys.executable)
    python.write_text(f'#!/bin/sh\nexec {here} {shlex.quote(str(recorder))} "$@"\n')
    python.chmod(0o755)
    return root


def make_argv(root: Path, *args: str, **env: str) -> list[list[str]]:
    """Run make with the recorder as the venv's python; the argv it saw."""
    log = root.parent / "argv.log"
    log.unlink(missing_ok=True)
    venv = root.parent / "venv"
    done = make(
        "-o",
        "venv",
        "-o",
        "venv-pristine",
        "-o",
        "tools-venv",
        f"VENV={venv}",
        f"TOOLS_VENV={venv}",
        *args,
        cwd=root,
        ARGV_LOG=str(log),
        **env,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


NASTY = "Ann $USER Lee `touch {m}` \"q\" 's' $(shell touch {m}) ${{HOME}} \\n #x"


def test_a_name_reaches_make_pr_as_typed(front: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    name = NASTY.format(m=marker)
    (argv,) = make_argv(front, "pr", f"PR_NAME={name}", "PR_EMAIL=ann+q@example.org")
    assert argv == ["-m", "tools.pr", "--name", name, "--email", "ann+q@example.org"]
    assert not marker.exists()
    (argv,) = make_argv(front, "pr")
    assert argv == ["-m", "tools.pr"]


def test_values_reach_the_other_targets_as_typed(front: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    odd = NASTY.format(m=marker)
    python = f"PYTHON={tmp_path / 'venv' / 'bin' / 'python'}"
    *_, rebase = make_argv(front, "rebase", python, f"TO={odd}")
    assert rebase == ["-m", "tools.rebase", "--to", odd]
    (matrix,) = make_argv(front, "matrix", f"VERSIONS={odd}")
    assert matrix == ["-m", "tools.matrix", "--versions", odd]
    (audit,) = make_argv(front, "audit", "AUDIT_PATHS=a b* $(shell touch x)")
    assert audit == ["-m", "tools.audit", "a", "b*", "$(shell", "touch", "x)"]
    (audit,) = make_argv(front, "audit")
    assert audit == ["-m", "tools.audit", "--record", "audit"]
    (forced,) = make_argv(front, "refresh", python, f"FORCE={odd}")
    assert forced == ["-m", "tools.patchq", "refresh", "--force"]
    (forced,) = make_argv(front, "refresh", python, FORCE=odd)  # from the environment
    assert forced == ["-m", "tools.patchq", "refresh", "--force"]
    assert not marker.exists()
    assert not (front / "x").exists()


def test_make_help_lists_every_target_once(tmp_path: Path) -> None:
    """With no pin at all: help (the default goal) needs none."""
    root = tmp_path / "bare"
    root.mkdir()
    shutil.copy(ROOT / "Makefile", root / "Makefile")
    for args in (["help"], []):
        done = make(*args, cwd=root)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        listed = [re.split(r"\s+", line, maxsplit=1) for line in lines]
        targets = phony_targets((ROOT / "Makefile").read_text())
        assert sorted(name for name, _ in listed) == sorted(targets)
        assert all(len(what) > 10 for _, what in listed), lines

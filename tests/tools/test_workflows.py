"""make lint's actionlint and zizmor pass this project's GitHub workflows
and catch a broken or unsafe one; every action is pinned by commit, its
release named beside it. What wheels.yml selects, and that it runs the
pinned cibuildwheel, is checked in tests/integration/test_workflows_real.py
(cibuildwheel reads aiohttp's own config from the checkout)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tools import lint

CODE = Path(__file__).resolve().parents[2]  # this project's own files
WORKFLOWS = sorted((CODE / ".github" / "workflows").glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.M)


def workflow_project(tmp_path: Path, text: str) -> Path:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(text)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_actionlint_passes_ours_and_fails_a_broken_workflow(tmp_path: Path) -> None:
    assert lint.actionlint(CODE)
    broken = workflow_project(
        tmp_path,
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.no_such_thing }}\n",
    )
    assert not lint.actionlint(broken)


def test_zizmor_passes_ours_and_fails_what_the_audit_found(tmp_path: Path) -> None:
    """The findings issue 20 reported: an action pinned by tag, and the
    checkout's credentials persisted where an artifact can pick them up."""
    assert lint.zizmor(CODE)
    unsafe = workflow_project(
        tmp_path,
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - uses: actions/checkout@v6.0.2\n",
    )
    assert not lint.zizmor(unsafe)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_release_beside_it(
    workflow: Path,
) -> None:
    uses = USES.findall(workflow.read_text())
    assert uses
    for ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
        assert re.fullmatch(r"\s+# v\d+(\.\d+)*", comment), (ref, comment)

"""make lint's actionlint passes this project's GitHub workflows and
catches a broken one. What wheels.yml selects, and that it runs the pinned
cibuildwheel, is checked in tests/integration/test_workflows_real.py
(cibuildwheel reads aiohttp's own config from the checkout)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tools import lint

CODE = Path(__file__).resolve().parents[2]  # this project's own files


def test_actionlint_passes_ours_and_fails_a_broken_workflow(tmp_path: Path) -> None:
    assert lint.actionlint(CODE)
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    (broken / "bad.yml").write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.no_such_thing }}\n"
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert not lint.actionlint(tmp_path)

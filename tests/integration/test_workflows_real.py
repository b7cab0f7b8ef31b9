"""wheels.yml and cibuildwheel (run after `make apply`): cibuildwheel itself
says which wheels the workflow selects (exactly cp39 ... cp313 on Linux,
macOS and Windows) from the patched tree, whose aiohttp config alone
would select others, and the pinned cibuildwheel is the one it runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tools.project import CHECKOUT, REQUIREMENTS, ROOT, export_tree, require_checkout

WORKFLOWS = ROOT / ".github" / "workflows"
WANTED = {"cp39", "cp310", "cp311", "cp312", "cp313"}
EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")


def cibuildwheel_job() -> dict[str, Any]:
    jobs = yaml.safe_load((WORKFLOWS / "wheels.yml").read_text())["jobs"]
    (job,) = [
        j
        for j in jobs.values()
        if any(s.get("uses", "").startswith("pypa/cibuildwheel@") for s in j["steps"])
    ]
    return job


def workflow_env() -> dict[str, str]:
    """The CIBW_* settings of the job, ${{ ... }} filled with a stand-in."""
    job = cibuildwheel_job()
    (step,) = [s for s in job["steps"] if s.get("uses", "").startswith("pypa/")]
    env = {**job.get("env", {}), **step.get("env", {})}
    return {k: EXPRESSION.sub("1", str(v)) for k, v in env.items()}


@pytest.fixture(scope="module")
def patched_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_checkout(CHECKOUT)  # fails, not skips: make test runs this after apply
    tree = tmp_path_factory.mktemp("sdist") / "aiohttp"
    export_tree(CHECKOUT, "HEAD", tree)
    return tree


def identifiers(tree: Path, platform: str, cibw_env: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "cibuildwheel"),
            "--print-build-identifiers",
            "--platform",
            platform,
            str(tree),
        ],
        env={**env, **cibw_env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("platform", ["linux", "macos", "windows"])
def test_wheels_workflow_selects_exactly_cp39_to_cp313(
    patched_tree: Path, platform: str
) -> None:
    selected = identifiers(patched_tree, platform, workflow_env())
    assert {i.split("-")[0] for i in selected} == WANTED, selected
    if platform == "macos":
        assert {i.split("-", 1)[1] for i in selected} == {
            "macosx_x86_64",
            "macosx_arm64",
        }
    # without the workflow's settings, aiohttp's own config selects others
    # too (newer CPythons, free-threaded builds): the settings do the work
    default = identifiers(patched_tree, platform, {})
    assert {i.split("-")[0] for i in default} - WANTED


def test_workflow_runs_the_pinned_cibuildwheel() -> None:
    (step,) = [
        s
        for s in cibuildwheel_job()["steps"]
        if s.get("uses", "").startswith("pypa/cibuildwheel@")
    ]
    pins = (REQUIREMENTS / "tools.txt").read_text()
    (pinned,) = re.findall(r"^cibuildwheel==(\S+)$", pins, re.M)
    assert step["uses"] == f"pypa/cibuildwheel@v{pinned}"

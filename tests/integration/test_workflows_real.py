"""wheels.yml and cibuildwheel (run after `make apply`): the pinned
cibuildwheel itself says which wheels each of the workflow's jobs selects
from the patched tree (whose aiohttp config alone would select others);
together they are exactly what aiohttp 3.10.10 shipped
(.github/upstream-wheels.toml), each built once, on the Linux images that
gave upstream's tags; and the workflow runs the pinned cibuildwheel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tools.compat import tomllib
from tools.project import CHECKOUT, REQUIREMENTS, ROOT, export_tree, require_checkout

WORKFLOW = ROOT / ".github" / "workflows" / "wheels.yml"
UPSTREAM = ROOT / ".github" / "upstream-wheels.toml"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
CIBUILDWHEEL = re.compile(r"uses:\s*pypa/cibuildwheel@([0-9a-f]{40})\s+# v(\S+)")
RUNNER_PLATFORM = {"ubuntu": "linux", "macos": "macos", "windows": "windows"}


def upstream() -> dict[str, Any]:
    return tomllib.loads(UPSTREAM.read_text())


def upstream_identifiers() -> list[str]:
    data = upstream()
    return [
        f"{python}-{platform}"
        for python in data["pythons"]
        for platforms in data["platforms"].values()
        for platform in platforms
    ]


def cibuildwheel_job() -> dict[str, Any]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    (job,) = [
        j
        for j in jobs.values()
        if any(s.get("uses", "").startswith("pypa/cibuildwheel@") for s in j["steps"])
    ]
    return job


def jobs() -> list[tuple[str, dict[str, str]]]:
    """(platform, CIBW_* settings) of each matrix entry: ${{ matrix.x }} is
    the entry's value, any other expression a stand-in."""
    job = cibuildwheel_job()
    (step,) = [s for s in job["steps"] if s.get("uses", "").startswith("pypa/")]
    settings = {**job.get("env", {}), **step.get("env", {})}
    found = []
    for entry in job["strategy"]["matrix"]["include"]:

        def fill(match: re.Match[str], entry: dict[str, Any] = entry) -> str:
            name = match.group(1)
            return str(entry[name[7:]]) if name.startswith("matrix.") else "1"

        env = {k: EXPRESSION.sub(fill, str(v)) for k, v in settings.items()}
        found.append((RUNNER_PLATFORM[entry["os"].split("-")[0]], env))
    return found


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
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_wheels_workflow_builds_what_upstream_shipped_each_once(
    patched_tree: Path,
) -> None:
    selected = [
        identifier
        for platform, env in jobs()
        for identifier in identifiers(patched_tree, platform, env)
    ]
    twice = [i for i, n in Counter(selected).items() if n > 1]
    assert not twice, f"built by two jobs: {twice}"
    assert sorted(selected) == sorted(upstream_identifiers())
    assert len(selected) == 90  # what PyPI holds for 3.10.10


def test_without_the_workflows_settings_aiohttps_config_selects_others(
    patched_tree: Path,
) -> None:
    """So the comparison above tests the workflow, not a default."""
    default = set(identifiers(patched_tree, "linux", {}))
    assert default - set(upstream_identifiers())


def test_linux_wheels_use_the_images_that_gave_upstreams_tags() -> None:
    images = upstream()["linux-images"]
    for platform in upstream()["platforms"]["linux"]:
        family, arch = platform.split("_", 1)
        for name, env in jobs():
            if name == "linux":
                setting = f"CIBW_{family.upper()}_{arch.upper()}_IMAGE"
                assert env.get(setting) == images[family], setting


def test_workflow_runs_the_pinned_cibuildwheel() -> None:
    (uses,) = CIBUILDWHEEL.findall(WORKFLOW.read_text())
    pins = (REQUIREMENTS / "tools.txt").read_text()
    (pinned,) = re.findall(r"^cibuildwheel==(\S+)$", pins, re.M)
    assert uses[1] == pinned

"""make apply on the Pythons a packager has: Debian 12's /usr/bin/python3
(3.11.2: no tomllib data filter), 3.9 to 3.13 wherever the machine keeps
them (pyenv here, setup-python's on a GitHub runner); the same
checkout, commit for commit, from each. Too old a Python gets one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.throwaway import Project
from tools import interpreters

CODE = Path(__file__).resolve().parents[2]  # this project's tools and patches
PYENV = Path.home() / ".pyenv" / "versions"


# Debian's own in `make test`; every other one in `make test-slow` (.ci/run).
SUPPORTED = ["/usr/bin/python3"] + [
    pytest.param(python.path, marks=pytest.mark.slow)
    for python in map(interpreters.find, interpreters.SUPPORTED)
    if python is not None
]
TOO_OLD = sorted(
    str(p)
    for p in PYENV.glob("*/bin/python")
    if p.parent.parent.name.startswith(("2.", "3.6.", "3.7.", "3.8."))
)


def version_of(python: str) -> tuple[int, ...]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(int(n) for n in out.split())


def apply_with(project: Project, python: str) -> str:
    shutil.rmtree(project.root / "patches", ignore_errors=True)
    shutil.copytree(CODE / "patches", project.root / "patches")
    done = project.run("apply", python=python)
    assert done.returncode == 0, done.stderr
    return project.git("rev-parse", "HEAD")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, cached_sdist: Path) -> str:
    root = tmp_path_factory.mktemp("reference") / "proj"
    shutil.copytree(
        CODE / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(CODE / "upstream.toml", root / "upstream.toml")
    (root / "build" / "cache").mkdir(parents=True)
    shutil.copy(cached_sdist, root / "build" / "cache" / cached_sdist.name)
    return apply_with(Project(root), sys.executable)


@pytest.mark.parametrize("python", SUPPORTED)
def test_apply_gives_the_same_checkout(
    project: Project, reference: str, python: str
) -> None:
    if not Path(python).exists():
        pytest.skip(f"{python} is not installed")
    assert (3, 9) <= version_of(python) < (3, 14)
    assert apply_with(project, python) == reference
    assert project.git("status", "--porcelain") == ""


def test_debian_python_lacks_what_the_fallbacks_replace() -> None:
    """So the test above exercises compat's fallbacks, not the stdlib."""
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no /usr/bin/python3")
    if version_of("/usr/bin/python3")[:2] != (3, 11):
        pytest.skip("/usr/bin/python3 is not Debian 12's 3.11")
    done = subprocess.run(
        [
            "/usr/bin/python3",
            "-c",
            "import tarfile; print(hasattr(tarfile, 'data_filter'))",
        ],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == str(version_of("/usr/bin/python3") >= (3, 11, 4))


@pytest.mark.parametrize("python", TOO_OLD or ["none"])
def test_too_old_a_python_gets_one_line(project: Project, python: str) -> None:
    if python == "none":
        pytest.skip("no Python older than 3.9 installed")
    done = project.run("apply", python=python)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "Python 3.9 or newer" in done.stderr
    assert not (project.root / "build" / "aiohttp").exists()

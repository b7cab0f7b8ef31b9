"""tools/interpreters.py and .ci/pythons, the interpreter discovery .ci/run
starts with: pyenv's newest release, setup-python's tool cache, or
pythonX.Y on PATH, each asked what it is; one line for what is missing.

The simulated GitHub runner: pythonX.Y only on PATH (as setup-python puts
them), an empty HOME, no PYENV_ROOT, CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import interpreters

CODE = Path(__file__).resolve().parents[2]  # this project: .ci/ and tools/
CI_PYTHONS = CODE / ".ci" / "pythons"


def fake_python(path: Path, reports: str) -> Path:
    """An executable at path that answers the version question with reports."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {reports}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No pyenv, no tool cache and an empty PATH directory: tmp_path/bin."""
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("RUNNER_TOOL_CACHE", str(tmp_path / "toolcache"))
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path


def test_pyenv_newest_release_wins_over_the_rest(bare: Path) -> None:
    versions = bare / "pyenv" / "versions"
    fake_python(versions / "3.9.1" / "bin" / "python3", "3.9")
    newest = fake_python(versions / "3.9.18" / "bin" / "python3", "3.9")
    fake_python(bare / "toolcache/Python/3.9.20/x64/bin/python3", "3.9")
    fake_python(bare / "bin" / "python3.9", "3.9")
    assert interpreters.find("3.9") == interpreters.Python("3.9", str(newest))


def test_tool_cache_then_path_and_only_what_they_claim_to_be(bare: Path) -> None:
    cache = bare / "toolcache" / "Python"
    fake_python(bare / "pyenv/versions/3.13.0t/bin/python3", "3.13t")
    fake_python(cache / "3.13.1" / "x64-freethreaded" / "bin" / "python3", "3.13t")
    fake_python(cache / "3.13.2" / "x64" / "bin" / "python3", "3.13t")  # lies
    cached = fake_python(cache / "3.13.1" / "x64" / "bin" / "python3", "3.13")
    assert interpreters.find("3.13") == interpreters.Python("3.13", str(cached))
    fake_python(bare / "bin" / "python3.12", "3.11")  # not what its name says
    assert interpreters.find("3.12") is None
    on_path = fake_python(bare / "bin" / "python3.11", "3.11")
    assert interpreters.find("3.11") == interpreters.Python("3.11", str(on_path))


def test_an_unreadable_pyenv_root_is_passed_over(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's PYENV_ROOT (su keeps it, /root is 0700): Python 3.11's
    glob raises PermissionError there; the search goes on to PATH. Root reads
    every folder, so the refusal is simulated."""
    fake_python(bare / "pyenv/versions/3.9.18/bin/python3", "3.9")
    real_glob = Path.glob

    def glob(self: Path, pattern: str):  # type: ignore[no-untyped-def]
        if self.is_relative_to(bare / "pyenv"):
            raise PermissionError(13, "Permission denied", str(self))
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", glob)
    on_path = fake_python(bare / "bin" / "python3.9", "3.9")
    assert interpreters.find("3.9") == interpreters.Python("3.9", str(on_path))


def test_the_command_names_every_missing_version_in_one_line(
    bare: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_python(bare / "bin" / "python3.9", "3.9")
    assert interpreters.main(["3.9", "3.12", "3.13"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"error: no Python 3.12 or 3.13 under {bare}/pyenv/versions, "
        f"{bare}/toolcache/Python and on PATH (pythonX.Y); install them with "
        "pyenv or actions/setup-python, or put pythonX.Y on PATH\n"
    )
    assert interpreters.main(["3.9"]) == 0
    assert capsys.readouterr().out == f"{bare}/bin/python3.9\n"
    assert interpreters.main(["three"]) == 2


# ---------------------------------------------------------------- a runner


def real_pythons() -> dict[str, str]:
    """This machine's interpreters, to lay out as a runner would have them."""
    found = {v: interpreters.find(v) for v in interpreters.SUPPORTED}
    if found["3.9"] is None or found["3.13"] is None:
        pytest.skip("needs real Pythons 3.9 and 3.13 to lay out a runner")
    return {v: p.path for v, p in found.items() if p is not None}


def runner_env(tmp_path: Path, on_path: dict[str, str]) -> dict[str, str]:
    """setup-python's layout: pythonX.Y (and python3, the last one set up)
    on PATH; an empty HOME; no pyenv; the runner's own tool cache empty."""
    bin_dir = tmp_path / "hostedtoolcache-bin"
    bin_dir.mkdir()
    for version, exe in on_path.items():
        (bin_dir / f"python{version}").symlink_to(exe)
    (bin_dir / "python3").symlink_to(next(iter(on_path.values())))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYENV")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        HOME=str(home),
        CI="true",
        RUNNER_TOOL_CACHE=str(tmp_path / "toolcache"),
    )
    return env


def ci_pythons(env: dict[str, str], *versions: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CI_PYTHONS), *versions],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_finds_the_runners_pythons_on_path_with_an_empty_home(
    tmp_path: Path,
) -> None:
    env = runner_env(tmp_path, real_pythons())
    done = ci_pythons(env, "3.9", "3.13")
    assert done.returncode == 0, done.stderr
    bin_dir = tmp_path / "hostedtoolcache-bin"
    assert done.stdout.splitlines() == [
        str(bin_dir / "python3.9"),
        str(bin_dir / "python3.13"),
    ]


def test_ci_finds_a_python_in_setup_pythons_tool_cache(tmp_path: Path) -> None:
    real = real_pythons()
    env = runner_env(tmp_path, {"3.9": real["3.9"]})
    cached = tmp_path / "toolcache" / "Python" / "3.13.0" / "x64" / "bin" / "python3"
    cached.parent.mkdir(parents=True)
    cached.symlink_to(real["3.13"])
    done = ci_pythons(env, "3.13")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{cached}\n"


def test_ci_run_stops_first_with_one_line_naming_the_missing_python(
    tmp_path: Path,
) -> None:
    """All of .ci/run on a runner that lacks 3.13: it stops before building."""
    project = tmp_path / "project"
    for part in (".ci", "tools"):
        shutil.copytree(
            CODE / part, project / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    env = runner_env(tmp_path, {"3.9": real_pythons()["3.9"]})
    done = subprocess.run(
        ["bash", str(project / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: no Python 3.13 under ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in project.iterdir()) == [".ci", "tools"]

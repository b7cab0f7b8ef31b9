"""`tox` finds Python 3.9 to 3.13 with no flags (toxfile.py), even where
pyenv's shims answer only for the active version: here a PATH with no
python3.X at all, and pyenv's releases under PYENV_ROOT."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import interpreters

CODE = Path(__file__).resolve().parents[2]
TOX_INI = """\
[tox]
env_list = py39
skip_missing_interpreters = true
[testenv]
package = skip
commands = python -c "import sys; print('running', sys.version_info[:2])"
"""


def run_tox(project: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent  # tox itself, and nothing else
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOX_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return subprocess.run(
        [str(bin_dir / "tox"), "-c", str(project / "tox.ini"), "run", "-e", "py39"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_tox_finds_a_python_only_pyenv_has(tmp_path: Path) -> None:
    python = interpreters.find("3.9")
    if python is None or shutil.which("python3.9", path="/usr/bin:/bin"):
        pytest.skip("needs a Python 3.9 that is not on /usr/bin:/bin")
    project = tmp_path / "project"
    (project / "tools").mkdir(parents=True)
    for name in ("__init__.py", "interpreters.py"):
        shutil.copy(CODE / "tools" / name, project / "tools" / name)
    (project / "tox.ini").write_text(TOX_INI)
    # without the plugin, tox looks on PATH only and skips py39
    done = run_tox(project)
    assert "py39: SKIP" in done.stdout, done.stdout + done.stderr
    shutil.copy(CODE / "toxfile.py", project / "toxfile.py")
    done = run_tox(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "running (3, 9)" in done.stdout
    assert "py39: OK" in done.stdout

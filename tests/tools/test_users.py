"""The project as its users run it (issue 10, item 8).

A clone path with a space, a user who is not root on Debian's own
python3, and system-deps reporting rather than failing on apt's lock.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.tools.throwaway import (
    ROOT,
    Project,
    line_patch,
    one_error_line,
    pin_text,
    small_files,
)

P1 = line_patch("Change line four", 4, "changed 4")


def test_the_makefile_quotes_paths_with_a_space(tmp_path: Path) -> None:
    spaced = tmp_path / "a dir"
    spaced.mkdir()
    shutil.copy(ROOT / "Makefile", spaced / "Makefile")
    # the Makefile asks the tools for its paths and pins
    shutil.copytree(
        ROOT / "tools", spaced / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    (spaced / "upstream.toml").write_text(pin_text("1.0", "0" * 64))
    done = subprocess.run(
        ["make", "-n", "test-upstream-selected", "test-upstream-pristine"],
        cwd=spaced,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for line in done.stdout.replace("\\\n", " ").splitlines():
        words = shlex.split(line)
        for word in words:
            if str(tmp_path) in word:
                assert str(spaced) in word, (word, line)


def can_run_as_nobody() -> bool:
    return os.geteuid() == 0 and shutil.which("su") is not None


@pytest.mark.skipif(not can_run_as_nobody(), reason="needs root to become nobody")
def test_a_user_who_is_not_root(tmp_path: Path) -> None:
    """As nobody, on Debian's own python3: apply works, system-deps reports."""
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else None
    if python is None:
        pytest.skip("no /usr/bin/python3")
    # pytest's own temp dirs are private to root; nobody needs a way in
    tmp_path = Path(tempfile.mkdtemp(prefix="nobody-"))
    try:
        _as_nobody(tmp_path, python)
    finally:
        shutil.rmtree(tmp_path)


def _as_nobody(tmp_path: Path, python: str) -> None:
    root = tmp_path / "proj"
    shutil.copytree(
        ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    project = Project(root)
    project.pin("1.0", small_files())
    project.write_series({"a.patch": P1})
    tmp_path.chmod(0o755)
    subprocess.run(["chown", "-R", "nobody", str(root)], check=True)

    def as_nobody(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["su", "nobody", "-s", "/bin/sh", "-c", f"cd '{root}' && {command}"],
            capture_output=True,
            text=True,
        )

    done = as_nobody(f"{python} -m tools.patchq apply")
    assert done.returncode == 0, done.stderr
    assert (root / "build" / "aiohttp" / "lines.txt").stat().st_uid != 0
    deps = as_nobody(f"{python} -m tools.sysdeps no-such-command-x")
    assert deps.returncode == 1
    line = one_error_line(deps.stderr)
    assert "apt-get install -y no-such-command-x" in line
    assert "lock" not in deps.stderr


def test_system_deps_names_debian_python_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tools import sysdeps

    monkeypatch.setattr(sysdeps, "is_debian_python", lambda executable: True)
    real = sysdeps.importlib.util.find_spec
    monkeypatch.setattr(
        sysdeps.importlib.util,
        "find_spec",
        lambda name: None if name in ("pip", "ensurepip") else real(name),
    )
    version = "{}.{}".format(*sys.version_info[:2])
    wanted = ["sh", "no-such-command-x", "python3-pip", "python3-venv"]
    assert sysdeps.missing(wanted) == [
        "no-such-command-x",
        "python3-pip",
        f"python{version}-venv",
    ]
    monkeypatch.setattr(sysdeps, "is_debian_python", lambda executable: False)
    assert sysdeps.missing(wanted) == ["no-such-command-x"]

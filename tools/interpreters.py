"""Find CPython X.Y wherever a machine keeps it.

    python -m tools.interpreters 3.9 3.13    one path per line, in that order;
                                             exit 1 with one line naming every
                                             missing version and where it looked

Looked for, in this order: pyenv's releases (PYENV_ROOT, else ~/.pyenv; the
newest X.Y.Z first), setup-python's tool cache (RUNNER_TOOL_CACHE, else
AGENT_TOOLSDIRECTORY, else /opt/hostedtoolcache), then pythonX.Y on PATH
(setup-python, deadsnakes, Debian). Each candidate is asked what it is: a
pyenv shim of an inactive version, a free-threaded build or a pythonX.Y that
is another version does not count.

.ci/run, `make wheels`, `make wheel-smoke` and tox (toxfile.py) all find
their interpreters here, so a GitHub runner (Pythons on PATH, no pyenv) and
this machine (pyenv) are served alike.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The Pythons the tools, the tests and the wheels support.
SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")
RELEASE = re.compile(r"\d+\.\d+\.\d+")  # not 3.13.0t, 3.13-dev or a venv's name
# One line from the candidate: its X.Y, and "t" when the GIL is disabled.
WHAT_ARE_YOU = (
    "import sys, sysconfig; print('%d.%d%s' % (sys.version_info[:2] + "
    "('t' if sysconfig.get_config_var('Py_GIL_DISABLED') else '',)))"
)


@dataclass(frozen=True)
class Python:
    version: str  # "3.9"
    path: str

    @property
    def tag(self) -> str:
        return "cp" + self.version.replace(".", "")


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def tool_cache() -> Path:
    """Where actions/setup-python keeps its Pythons on a GitHub runner."""
    for name in ("RUNNER_TOOL_CACHE", "AGENT_TOOLSDIRECTORY"):
        if os.environ.get(name):
            return Path(os.environ[name])
    return Path("/opt/hostedtoolcache")


def _newest_first(paths: list[tuple[str, Path]]) -> list[str]:
    """(release, path) pairs, X.Y.Z releases only, newest first."""
    found = [
        (tuple(map(int, release.split("."))), str(path))
        for release, path in paths
        if RELEASE.fullmatch(release)
    ]
    return [path for _, path in sorted(found, reverse=True)]


def _glob(folder: Path, pattern: str) -> list[Path]:
    """The matches, or none where folder cannot be read (another user's
    PYENV_ROOT: Python 3.11's glob raises PermissionError there)."""
    try:
        return list(folder.glob(pattern))
    except OSError:
        return []


def candidates(version: str) -> Iterator[str]:
    """Every place version may be, in the order they are tried."""
    pyenv = _glob(pyenv_root() / "versions", f"{version}.*/bin/python3")
    yield from _newest_first([(p.parent.parent.name, p) for p in pyenv])
    # <cache>/Python/3.9.18/x64/bin/python3 (x64-freethreaded is not cpXY)
    cached = _glob(tool_cache() / "Python", f"{version}.*/*/bin/python3")
    yield from _newest_first(
        [(p.parents[2].name, p) for p in cached if "-" not in p.parents[1].name]
    )
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield on_path


def version_of(path: str) -> str | None:
    """X.Y of the interpreter at path ("3.13t" if free-threaded), or None."""
    try:
        done = subprocess.run(
            [path, "-c", WHAT_ARE_YOU], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find(version: str) -> Python | None:
    """The first candidate that really is CPython version (with its GIL)."""
    for path in candidates(version):
        if version_of(path) == version:
            return Python(version, path)
    return None


def looked_in() -> str:
    """Where find() looks, for a message."""
    return (
        f"under {pyenv_root()}/versions, {tool_cache()}/Python and on PATH (pythonX.Y)"
    )


def missing(*versions: str) -> str:
    """One line naming the missing versions, where they were looked for, and
    what to do."""
    return (
        f"no Python {' or '.join(versions)} {looked_in()}; install "
        f"{'them' if len(versions) > 1 else 'it'} with pyenv or "
        "actions/setup-python, or put pythonX.Y on PATH"
    )


def main(argv: list[str] | None = None) -> int:
    versions = sys.argv[1:] if argv is None else argv
    bad = [v for v in versions if not re.fullmatch(r"3\.\d+", v)]
    if not versions or bad:
        print("usage: python -m tools.interpreters 3.X [3.Y ...]", file=sys.stderr)
        return 2
    found = [(v, find(v)) for v in versions]
    absent = [v for v, python in found if python is None]
    if absent:
        print(f"error: {missing(*absent)}", file=sys.stderr)
        return 1
    print("\n".join(python.path for _, python in found if python))
    return 0


if __name__ == "__main__":
    sys.exit(main())

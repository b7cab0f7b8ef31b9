"""Hash locks of the patched wheels: what `pip install --require-hashes` needs.

`make wheel` / `make wheels` write one per wheel, dist.lock/cpXY.txt beside
dist/: the wheel and every dependency it pulls in on that Python, each
pinned exactly (to the versions the behaviour tests run with:
requirements/behaviour.txt) and with the sha256 of its files. uv (pinned in
requirements/tools.txt) resolves the wheel's own metadata against that
interpreter, taking the dependencies' hashes from the index; the wheel's is
its own file's. Installing it:

    python3.11 -m pip install --require-hashes --find-links dist -r dist.lock/cp311.txt
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.project import CONSTRAINTS, REQUIREMENTS, ROOT, ToolError

# The exact versions of aiohttp's dependencies the behaviour tests run with.
PINS = REQUIREMENTS / "behaviour.txt"


def locks_dir(dist: Path) -> Path:
    """dist.lock/ beside dist/ (dist/ holds distributions only)."""
    return dist.with_name(dist.name + ".lock")


def lock_path(dist: Path, tag: str) -> Path:
    return locks_dir(dist) / f"{tag}.txt"


def shown(path: Path) -> str:
    """path as typed from the project root (where the README's commands run)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def install_line(dist: Path, tag: str) -> str:
    """The one command that installs the wheel of tag from dist by its lock."""
    python = f"python{tag[2]}.{tag[3:]}"
    where, lock = shlex.quote(shown(dist)), shlex.quote(shown(lock_path(dist, tag)))
    return f"{python} -m pip install --require-hashes --find-links {where} -r {lock}"


def write_lock(wheel: Path, python: str, dist: Path, name: str, version: str) -> Path:
    """lock_path(dist, tag): name==version (the wheel) and its dependencies
    for the Python at `python`, pinned with hashes."""
    tag = wheel.name.split("-")[2]
    dest = lock_path(dist, tag)
    with tempfile.TemporaryDirectory(prefix="hashlock-") as tmp:
        links = Path(tmp)  # this wheel alone: the lock holds its hash only
        shutil.copy(wheel, links)
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "uv"),
                "pip",
                "compile",
                "-",
                "--python",
                python,
                "--generate-hashes",
                "--no-header",
                "--no-config",
                "--quiet",
                "--find-links",
                str(links),
                "-c",
                shown(CONSTRAINTS),
                "-c",
                shown(PINS),
            ],
            input=f"{name}=={version}\n",
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if done.returncode:
        raise ToolError(
            f"locking {wheel.name} with uv failed (it needs the package index):\n"
            + done.stderr.strip()
        )
    header = (
        f"# {name} {version} for CPython {tag[2]}.{tag[3:]} and its dependencies,\n"
        "# each pinned with sha256 hashes (make wheels, tools/hashlock.py).\n"
        "# Install with:\n"
        f"#   {install_line(dist, tag)}\n"
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(header + done.stdout)
    return dest

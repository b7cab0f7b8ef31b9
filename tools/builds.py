"""Compiling an aiohttp tree once and installing it into a venv.

The wheel of a tree is kept in a directory named by what it was built
from (build_key: the sdist, the patches and the interpreter), so the
matrix, the race table and the benchmarks compile each build once; the
venv it goes into holds a pinned requirements file (requirements_venv).
The matrix and the race table then run our behaviour tests there
(run_behaviour_tests).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from tools.project import (
    ROOT,
    Pin,
    clean_env,
    files_digest,
    pip,
    read_stamp,
    stamped_venv,
    venv_python,
    write_stamp,
)

BEHAVIOUR_TESTS = "tests/patch"
# Checks the version number, so it can only pass on the main pin.
PIN_ONLY_TESTS = ("tests/patch/test_build.py::test_version_is_the_pinned_release",)


def install_build(venv: Path, tree: Path, wheel_dir: Path) -> None:
    """Install the tree into venv, compiling a wheel unless wheel_dir has one.

    Other aiohttp versions conflict with the constraints' aiohttp pin, hence
    --no-deps and no -c here.
    """
    for stale in wheel_dir.parent.glob(wheel_dir.name.split("-")[0] + "-*"):
        if stale != wheel_dir:  # an older build of the same release
            shutil.rmtree(stale)
    if not any(wheel_dir.glob("*.whl")):
        pip(
            venv,
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheel_dir),
            str(tree),
        )
    [wheel] = wheel_dir.glob("*.whl")
    pip(venv, "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel))


class NamedDiff(Protocol):
    """What a build key reads of a patch (tools.patches.Patch)."""

    name: str
    diff: str


def build_key(pin: Pin, patches: Iterable[NamedDiff]) -> str:
    """Identifies a patched build: sdist, patches and the interpreter."""
    h = hashlib.sha256(pin.sha256.encode())
    for p in patches:
        h.update(p.name.encode() + b"\0" + p.diff.encode("utf-8", "surrogateescape"))
    h.update(f"{sys.implementation.cache_tag} {sysconfig.get_platform()}".encode())
    return h.hexdigest()[:16]


def requirements_venv(venv: Path, requirements: Path, constraints: Path | None) -> Path:
    """A venv holding requirements (under constraints, if given); its
    packages installed again when either file changes."""
    stamped_venv(venv)
    files = [requirements] + ([constraints] if constraints else [])
    digest = files_digest(*files)
    if read_stamp(venv).get("requirements") != digest:
        pinned = ["-c", str(constraints)] if constraints else []
        pip(venv, "install", "--quiet", *pinned, "-r", str(requirements))
        write_stamp(venv, requirements=digest)
    return venv


def run_behaviour_tests(
    venv: Path, args: Iterable[str], log: Path, timeout: int
) -> bool:
    """Run BEHAVIOUR_TESTS with venv's python and pytest args, the output
    in log; False when they ran past timeout seconds."""
    cmd = [str(venv_python(venv)), "-m", "pytest", BEHAVIOUR_TESTS, "-q"]
    cmd += ["-p", "no:cacheprovider", *args]
    try:
        with log.open("w") as out:
            subprocess.run(
                cmd,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                timeout=timeout,
            )
    except subprocess.TimeoutExpired:
        return False
    return True

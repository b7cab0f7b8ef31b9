"""The Debian packages the make targets need.

    python -m tools.sysdeps PACKAGE...

A package is needed when its command is missing (patch, quilt, valgrind).
python3-pip and python3-venv are needed when the Python running this is
Debian's own (/usr/bin) and lacks pip (sdist download) or ensurepip (the
venvs; Debian ships it as pythonX.Y-venv): Debian ships both apart from the
interpreter. As root the missing
packages are installed; otherwise one line says what to install, and the
exit status is 1.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools.cli import ToolError, reports_errors

COMMANDS = {"patch": "patch", "quilt": "quilt", "valgrind": "valgrind"}


def is_debian_python(executable: str = sys.executable) -> bool:
    return Path("/etc/debian_version").exists() and str(
        Path(executable).resolve()
    ).startswith("/usr/bin/")


# What each Python-side package provides; checked only for Debian's python.
MODULES = {"python3-pip": "pip", "python3-venv": "ensurepip"}
# Debian ships ensurepip in the versioned package of each interpreter.
DEBIAN_NAMES = {"python3-venv": "python{}.{}-venv".format(*sys.version_info[:2])}


def missing(packages: list[str], executable: str = sys.executable) -> list[str]:
    debian = is_debian_python(executable)
    needed = []
    for p in packages:
        if p in MODULES:
            if debian and importlib.util.find_spec(MODULES[p]) is None:
                needed.append(DEBIAN_NAMES.get(p, p))
        elif shutil.which(COMMANDS.get(p, p)) is None:
            needed.append(p)
    return needed


@reports_errors
def main(argv: list[str] | None = None) -> int:
    needed = missing(sys.argv[1:] if argv is None else argv)
    if not needed:
        return 0
    names = " ".join(needed)
    if os.geteuid() != 0:
        raise ToolError(
            f"missing Debian packages: {names}; as root run: "
            f"apt-get update && apt-get install -y {names}"
        )
    print(f"installing Debian packages: {names}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *needed], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())

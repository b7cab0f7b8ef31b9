"""Print the changelog drafts: aiohttp's (fragments in build/aiohttp) and
this project's (CHANGES/ at the top, config in pyproject.toml).

aiohttp's draft uses aiohttp's own [tool.towncrier] config from the
checkout. That config names a template, CHANGES/.TEMPLATE.rst, which the
sdist does not ship, so towncrier's default RST template stands in for it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import towncrier

from tools import sdist
from tools.compat import tomllib
from tools.patchq import CHECKOUT

ROOT = sdist.ROOT


def series_version() -> str:
    pin = sdist.load_pin()
    label = tomllib.loads(sdist.PIN_FILE.read_text())["series"]["label"]
    return f"{pin.version}+{label}"


def _draft(directory: Path, config: Path, version: str, name: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "towncrier",
            "build",
            "--draft",
            "--config",
            str(config),
            "--dir",
            str(directory),
            "--version",
            version,
            "--name",
            name,
            "--date",
            "unreleased",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"error: towncrier failed in {directory}:\n{done.stderr}")
    return done.stdout


def aiohttp_draft(tree: Path = CHECKOUT) -> str:
    """aiohttp's changelog draft of the fragments the series adds."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(tree / "pyproject.toml", work / "pyproject.toml")
        if (tree / "CHANGES").is_dir():
            shutil.copytree(tree / "CHANGES", work / "CHANGES")
        (work / "CHANGES").mkdir(exist_ok=True)
        default = Path(towncrier.__file__).parent / "templates" / "default.rst"
        shutil.copy(default, work / "CHANGES" / ".TEMPLATE.rst")
        return _draft(work, work / "pyproject.toml", series_version(), "aiohttp")


def our_draft() -> str:
    return _draft(
        ROOT,
        ROOT / "pyproject.toml",
        series_version(),
        "aiohttp connect-timeout series",
    )


def main() -> int:
    print("=" * 30, "aiohttp (CHANGES/ in build/aiohttp)", "=" * 30)
    print(aiohttp_draft())
    print("=" * 30, "this series (CHANGES/)", "=" * 30)
    print(our_draft())
    return 0


if __name__ == "__main__":
    sys.exit(main())

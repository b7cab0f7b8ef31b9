"""The venv's installed set is consistent, and no dependency can swap the
patched aiohttp for another release: every requirement is an exact pin
and aiohttp is pinned only by the constraints; the pristine sources for
aiohttp's own tests are exported afresh. (That the imported aiohttp
is the checkout's build is in tests/integration/test_environment_real.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.gitrepo import commit, files_of, pristine_files, pristine_repo
from tools import envs
from tools.project import ToolError, load_pin

CODE = Path(__file__).resolve().parents[2]  # this project's own files
REQUIREMENTS = CODE / "requirements"


def test_installed_set_is_consistent() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


def test_every_requirement_is_pinned_exactly_and_aiohttp_only_by_constraint() -> None:
    line_re = re.compile(r"^[A-Za-z0-9._-]+==[^=\s;]+(\s*;.*)?$")
    version = load_pin(CODE / "upstream.toml").version
    seen = []
    for path in sorted(REQUIREMENTS.glob("*.txt")):
        for line in path.read_text().splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            assert line_re.match(line), f"{path.name}: {line!r} is not an exact pin"
            name = line.split("==")[0].lower()
            if name == "aiohttp":
                assert path.name == "constraints.txt"
                assert line == f"aiohttp=={version}"
                seen.append(path.name)
    assert seen == ["constraints.txt"]


def test_export_source_writes_the_pinned_tag_afresh(tmp_path: Path) -> None:
    """What `make test-upstream-pristine` runs pristine's tests in."""
    pin = load_pin()
    tree = pristine_repo(tmp_path / "checkout", pin)
    commit(tree, "The series\n", {"aiohttp/connector.py": "patched\n"})
    (tree / "untracked.txt").write_text("not in the tag\n")
    dest = tmp_path / "pristine src"
    (dest / "stale").mkdir(parents=True)
    envs.export_source(dest, tree)
    assert files_of(dest) == {
        name: text.encode() for name, text in pristine_files(pin.version).items()
    }
    with pytest.raises(ToolError, match="Run `make apply` first"):
        envs.export_source(dest, tmp_path / "none")

"""make intree end to end: needs the real sdist, whose aiohttp sources are
laid over this venv's compiled aiohttp (run by `make test-slow` after `make
apply`; `make test-pristine` runs the check itself on the real series)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.throwaway import PROBED_LOG_PATCH, make_patch, real_pin_project

# Five runs of aiohttp's tests on trees around each patch: `make test-slow`.
pytestmark = pytest.mark.slow


def test_the_check_runs_each_code_patch_against_the_trees_around_it(
    tmp_path: Path,
) -> None:
    """End to end on a throwaway series, with this venv's compiled aiohttp."""
    project = real_pin_project(tmp_path / "proj")
    probe = make_patch(
        "Rename the client logger",
        """
        diff --git a/aiohttp/log.py b/aiohttp/log.py
        --- a/aiohttp/log.py
        +++ b/aiohttp/log.py
        @@ -3,4 +3,4 @@ import logging
         access_logger = logging.getLogger("aiohttp.access2")
        -client_logger = logging.getLogger("aiohttp.client")
        +client_logger = logging.getLogger("aiohttp.client2")
         internal_logger = logging.getLogger("aiohttp.internal")
         server_logger = logging.getLogger("aiohttp.server")
        diff --git a/tests/test_probe2.py b/tests/test_probe2.py
        new file mode 100644
        --- /dev/null
        +++ b/tests/test_probe2.py
        @@ -0,0 +1,5 @@
        +from aiohttp.log import client_logger
        +
        +
        +def test_client_logger_renamed() -> None:
        +    assert client_logger.name == "aiohttp.client2"
        """,
    )
    project.write_series({"0001-log.patch": PROBED_LOG_PATCH, "0002-log.patch": probe})
    assert project.run("apply").returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "tools.intree", "--venv", sys.prefix],
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = (project.root / "build" / "intree" / "report.md").read_text()
    rows = [
        [cell.strip() for cell in line.split("|")[1:6]]
        for line in report.splitlines()
        if line.startswith("| 000")
    ]
    assert rows == [
        ["0001-log.patch", "2 (2)", "pristine", "fail",
         "passed without the patch: test_internal_logger_kept"],
        ["0001-log.patch", "2 (2)", "with the patch", "pass", "ok"],
        ["0002-log.patch", "1 (1)", "pristine", "fail", "ok"],
        ["0002-log.patch", "1 (1)", "patches 1-1 only", "fail", "ok"],
        ["0002-log.patch", "1 (1)", "with the patch", "pass", "ok"],
    ]  # fmt: skip
    assert "error: 0001-log.patch against pristine: passed without" in done.stderr

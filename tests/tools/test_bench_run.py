"""tools/bench_run.py and the tools/bench.py command line, without running
a benchmark: environments, the upgrade venv's reuse, recording."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tools import bench, bench_run, project
from tools.bench_report import BenchError
from tools.project import Pin

PIN = Pin("aiohttp", bench_run.UPGRADE, f"aiohttp-{bench_run.UPGRADE}.tar.gz", "a" * 64)


def test_each_round_runs_with_its_own_hash_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setenv("CODSPEED_RUNNER_MODE", "outer")
    env = bench_run.child_env(3)
    assert env["PYTHONHASHSEED"] == "3"
    assert "PYTHONPATH" not in env and "CODSPEED_RUNNER_MODE" not in env
    assert bench_run.child_env(0, CODSPEED_ENV="1")["CODSPEED_ENV"] == "1"


def test_upgrade_venv_is_reused_while_its_inputs_stay(tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text("")
    project.write_stamp(tmp_path, **{"bench-inputs": bench_run.upgrade_inputs(PIN)})
    # up to date: nothing is downloaded or built
    assert bench_run.ensure_upgrade_venv(tmp_path, pinned=[PIN]) == python
    other = Pin(PIN.name, PIN.version, PIN.sdist, "0" * 64)
    assert bench_run.upgrade_inputs(other) != bench_run.upgrade_inputs(PIN)


def test_upgrade_venv_needs_a_pinned_release(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="not pinned"):
        bench_run.ensure_upgrade_venv(tmp_path, version="9.9.9", pinned=[PIN])


@pytest.mark.parametrize("no_record", [False, True])
def test_bench_records_its_report_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_record: bool
) -> None:
    seen: dict[str, Any] = {}

    def run_suite(args: argparse.Namespace, pythons: dict[str, Path]) -> dict[str, Any]:
        seen["pythons"] = pythons
        return {"fake": True}

    doc = tmp_path / "docs" / "measurements.md"
    monkeypatch.setattr(project, "MEASUREMENTS", doc)
    monkeypatch.setattr(bench, "run_suite", run_suite)
    monkeypatch.setattr(bench, "render_report", lambda r: "# Report\n\nfigure 42\n")
    argv = ["--no-upgrade", "--out", str(tmp_path / "out"), "--rounds", "3"]
    assert bench.main(argv + (["--no-record"] if no_record else [])) == 0
    assert set(seen["pythons"]) == {"pristine", "patched"}
    assert (tmp_path / "out" / "report.md").read_text().endswith("figure 42\n")
    if no_record:
        assert not doc.exists()
        return
    text = doc.read_text()
    assert "<!-- begin bench-instructions -->" in text
    assert "figure 42" in text and "### Report" in text
    assert " -m tools.bench --no-upgrade --out " in text

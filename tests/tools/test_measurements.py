"""tools/measurements.py: one generated document, one section per target."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tools import measurements, project
from tools.project import ToolError

REPO = Path(__file__).resolve().parents[2]  # this checkout, whatever ROOT says

HOST = {"cpu": "Test CPU @ 1GHz", "cores": "2", "python": "3.11.7", "os": "Linux-x"}


def test_record_creates_the_document_with_date_machine_and_command(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "docs" / "measurements.md"
    measurements.record("audit", "2 overrides\n", "make audit", path=doc)
    text = doc.read_text()
    assert text.startswith(measurements.HEADER)
    assert "## audit\n" in text
    assert "- command: `make audit`" in text
    assert "- date: 20" in text and " UTC" in text
    machine = measurements.machine()
    assert f"- machine: {machine['cpu']}, {machine['cores']} cores" in text
    assert "\n2 overrides\n" in text


def test_record_replaces_its_own_section_and_keeps_the_others(tmp_path: Path) -> None:
    doc = tmp_path / "measurements.md"
    measurements.record("bench-load", "first load\n", "make bench-load", path=doc)
    measurements.record("audit", "audit figures\n", "make audit", path=doc)
    measurements.record("bench-load", "second load\n", "make bench-load", path=doc)
    text = doc.read_text()
    assert "first load" not in text
    assert "second load" in text and "audit figures" in text
    # the replaced section keeps its place: order is that of first recording
    assert measurements.sections(text) == ["bench-load", "audit"]


def test_record_keeps_prose_outside_the_sections(tmp_path: Path) -> None:
    doc = tmp_path / "measurements.md"
    measurements.record("tox", "py39: ok\n", "make tox", path=doc)
    doc.write_text(doc.read_text() + "\nA note kept by hand.\n")
    measurements.record("tox", "py39: ok, py313: ok\n", "make tox", path=doc)
    text = doc.read_text()
    assert "A note kept by hand." in text and "py313: ok" in text


def test_section_headings_nest_under_the_section_but_code_stays(tmp_path: Path) -> None:
    body = "# Report\n\n## Targets\n\n```sh\n# a comment\n```\n"
    text = measurements.render_section("x", body, "cmd", when="now", host=HOST)
    assert "### Report" in text and "#### Targets" in text
    assert "\n# a comment\n" in text
    assert "- machine: Test CPU @ 1GHz, 2 cores, Python 3.11.7, Linux-x" in text
    assert "- date: now" in text


@pytest.mark.parametrize("section", ["Bench", "a b", "", "-x", "x/y"])
def test_record_refuses_a_bad_section_name(tmp_path: Path, section: str) -> None:
    with pytest.raises(ToolError, match="section"):
        measurements.record(section, "x", "cmd", path=tmp_path / "m.md")


def test_record_refuses_an_empty_body(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="empty"):
        measurements.record("audit", " \n", "cmd", path=tmp_path / "m.md")
    assert not (tmp_path / "m.md").exists()


def test_a_failed_write_leaves_the_old_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "measurements.md"
    measurements.record("audit", "old figures\n", "cmd", path=doc)
    before = doc.read_text()

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        measurements.record("audit", "new figures\n", "cmd", path=doc)
    assert doc.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".md")] == [
        "measurements.md"
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".measurements.md.")]


def test_cli_records_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "measurements.md"
    monkeypatch.setattr(sys, "stdin", io.StringIO("| py39 | 45 passed |\n"))
    argv = ["record", "tox", "-", "--command", "make tox", "--doc", str(doc)]
    assert measurements.main(argv) == 0
    assert "| py39 | 45 passed |" in doc.read_text()


def test_cli_writes_under_the_configured_project_root(tmp_path: Path) -> None:
    figures = tmp_path / "figures.md"
    figures.write_text("3 files scanned\n")
    env = {**os.environ, "AIOHTTP_SERIES_ROOT": str(tmp_path), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tools.measurements", "record", "audit-addons"]
    cmd += [str(figures), "--command", "make audit-addons", "--title", "Add-ons"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "docs" / "measurements.md").read_text()
    assert "## Add-ons" in text and "3 files scanned" in text


def test_cli_reports_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["record", "tox", str(tmp_path / "nope"), "--command", "c"]
    argv += ["--doc", str(tmp_path / "m.md")]
    assert measurements.main(argv) == 1
    assert "cannot read" in capsys.readouterr().err


def test_targets_recording_at_once_lose_no_section(tmp_path: Path) -> None:
    doc = tmp_path / "measurements.md"
    names = [f"target-{i}" for i in range(8)]
    threads = [
        threading.Thread(
            target=measurements.record, args=(n, f"{n} figures", "c", None, doc)
        )
        for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(measurements.sections(doc.read_text())) == names


def test_invocation_names_the_interpreter_from_the_project_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        sys, "executable", str(project.ROOT / "build/venvs/audit/bin/python")
    )
    line = measurements.invocation("tools.audit", ["--record", "audit-addons"])
    assert line == "build/venvs/audit/bin/python -m tools.audit --record audit-addons"
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    assert measurements.invocation("tools.bench", ["a b"]) == (
        "/usr/bin/python3 -m tools.bench 'a b'"
    )


# Figures as the measuring targets print them: counts with thousands
# separators, ratios, durations, percentages and test counts.
FIGURE = re.compile(
    r"\d{1,3}(,\d{3})+|\b[01]\.\d{3,}\b|\d(\.\d+)? ?(ms|µs|%)|\d+ (passed|files?)\b"
)


def test_readme_quotes_no_measured_figure_and_links_the_document() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/measurements.md" in readme
    found = [m.group(0) for m in FIGURE.finditer(readme)]
    assert found == [], "measured figures belong in docs/measurements.md"


def test_readme_links_each_patch_of_the_series() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    series = (REPO / "patches" / "series").read_text(encoding="utf-8").splitlines()
    names = [line.split()[0] for line in series if line.strip() and line[0] != "#"]
    assert names
    for name in names:
        assert f"](patches/{name})" in readme, name


def test_figure_pattern_catches_what_the_targets_print() -> None:
    for text in ("68,364,966", "ratio 0.9741", "2.389 ms", "0.38%", "41 passed"):
        assert FIGURE.search(text), text
    assert not FIGURE.search("aiohttp 3.10.10+connect.timeout.1, Python 3.9 to 3.13")

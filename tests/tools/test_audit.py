"""Tests for tools/audit.py on the fixture trees in fixtures/audit/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tools import audit

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "audit"
BASIC, MULTI, VENDORED = FIXTURES / "basic", FIXTURES / "multi", FIXTURES / "vendored"
OK_BASE, OK_OWN = "OK (calls base connect)", "OK (applies its own timeout)"


def findings(*paths: Path) -> dict[str, audit.Finding]:
    report = audit.run(paths)
    by_class = {f.cls: f for f in report.findings}
    assert len(by_class) == len(report.findings), "fixture class names must be unique"
    return by_class


def test_direct_subclass_calling_super_is_ok() -> None:
    found = findings(BASIC)["SuperConnector"]
    assert (found.file, found.line) == ("calls_super.py", 8)
    assert found.base_chain == ["aiohttp.TCPConnector"]
    assert found.calls_base == ["super().connect (line 10)"]
    assert found.own_timeout == []
    assert found.verdict == OK_BASE


@pytest.mark.parametrize(
    ("cls", "evidence"),
    [
        ("OldStyleSuperConnector", "super(OldStyleSuperConnector, self).connect"),
        ("ExplicitBaseConnector", "aiohttp.TCPConnector.connect"),
    ],
)
def test_other_spellings_of_the_base_call(cls: str, evidence: str) -> None:
    found = findings(BASIC)[cls]
    assert [e.split(" (")[0] for e in found.calls_base] == [evidence]
    assert found.verdict == OK_BASE


def test_override_without_base_call_or_timeout_loses() -> None:
    found = findings(BASIC)["BareConnector"]
    assert (found.file, found.line) == ("loses.py", 7)
    assert found.base_chain == ["aiohttp.BaseConnector"]
    assert (found.calls_base, found.own_timeout) == ([], [])
    assert found.verdict == audit.LOSES
    assert audit.main([str(BASIC / "loses.py")]) == 1


@pytest.mark.parametrize(
    ("cls", "evidence"),
    [
        ("WaitForConnector", "asyncio.wait_for (line 13)"),
        ("CeilTimeoutConnector", "aiohttp.helpers.ceil_timeout (line 18)"),
        ("AsyncTimeoutConnector", "async_timeout.timeout (line 24)"),
        (
            "AliasedWaitForConnector",
            "asyncio.wait_for (line 30)",
        ),  # `wait_for as bounded`
        ("HelperTimeoutConnector", "asyncio.timeout (self._guarded line 40)"),
    ],
)
def test_override_with_its_own_timeout_is_ok(cls: str, evidence: str) -> None:
    found = findings(BASIC)[cls]
    assert found.calls_base == []
    assert found.own_timeout == [evidence]
    assert found.verdict == OK_OWN


def test_own_timeout_file_alone_exits_0() -> None:
    assert audit.main([str(BASIC / "own_timeout.py")]) == 0


@pytest.mark.parametrize(
    ("cls", "root", "verdict"),
    [
        ("AliasBConnector", "aiohttp.BaseConnector", audit.LOSES),  # ... as B
        (
            "ModuleAliasConnector",
            "aiohttp.UnixConnector",
            audit.LOSES,
        ),  # import aiohttp as ah
        ("AssignedAliasConnector", "aiohttp.TCPConnector", OK_BASE),  # Base = ...
        ("PipeAliasConnector", "aiohttp.NamedPipeConnector", audit.LOSES),  # in try:
    ],
)
def test_alias_imports_resolve_to_the_aiohttp_base(
    cls: str, root: str, verdict: str
) -> None:
    found = findings(BASIC)[cls]
    assert found.file == "aliases.py"
    assert found.base_chain == [root]
    assert found.verdict == verdict


def test_classes_that_are_not_connectors_are_not_reported() -> None:
    found = findings(BASIC)
    # not_connectors.py defines `connect` three times, on a local class named
    # TCPConnector, a subclass of it, and an unrelated class: none is reported.
    assert not [f for f in found.values() if f.file == "not_connectors.py"]
    assert {"LookalikeConnector", "Database"}.isdisjoint(found)
    assert found["TCPConnector"].file == "shadowing.py"  # a real one, elsewhere
    assert "NoOverrideConnector" not in found  # a connector, but no override
    assert "CycleConnector" not in found  # its base is an unresolvable alias cycle
    assert len(found) == 16


def test_star_import_shadowing_and_nested_classes() -> None:
    found = findings(BASIC / "shadowing.py")
    assert sorted(found) == ["InnerConnector", "StarConnector", "TCPConnector"]
    assert found["StarConnector"].base_chain == ["aiohttp.UnixConnector"]
    assert found["StarConnector"].verdict == audit.LOSES
    # `class TCPConnector(TCPConnector)`: the base is aiohttp's, not itself.
    shadow = found["TCPConnector"]
    assert shadow.base_chain == ["aiohttp.TCPConnector"]
    assert shadow.calls_base == ["base.connect (base = super(); line 19)"]
    assert shadow.verdict == OK_BASE
    inner = found["InnerConnector"]  # defined inside make_connector()
    assert inner.qualname == "shadowing.make_connector.<locals>.InnerConnector"
    assert inner.base_chain == [
        "shadowing.make_connector.<locals>.InnerBase",
        "shadowing.TCPConnector",
        "aiohttp.TCPConnector",
    ]
    assert inner.verdict == audit.LOSES


def test_indirect_subclasses_across_modules_and_packages() -> None:
    found = findings(MULTI)
    leaf = found["LeafConnector"]
    assert (leaf.file, leaf.line) == ("leaf_pkg/leaf.py", 8)
    assert leaf.base_chain == ["hub_pkg.middle.MiddleConnector", "aiohttp.TCPConnector"]
    assert leaf.verdict == audit.LOSES
    assert found["LeafCallsMiddleConnector"].calls_base == [
        "MiddleConnector.connect (line 14)"
    ]
    assert found["LeafCallsMiddleConnector"].verdict == OK_BASE
    assert found["GrandLeafConnector"].base_chain == [
        "leaf_pkg.leaf.LeafCallsMiddleConnector",
        "hub_pkg.middle.MiddleConnector",
        "aiohttp.TCPConnector",
    ]
    assert found["GrandLeafConnector"].verdict == OK_BASE


def test_calling_a_base_connect_that_loses_the_timeout_still_loses() -> None:
    found = findings(MULTI)
    assert found["LossyMiddleConnector"].verdict == audit.LOSES
    over = found["LeafOverLossyConnector"]
    assert over.calls_base == ["super().connect (line 19)"]
    assert over.verdict == f"{audit.LOSES} (base LossyMiddleConnector.connect loses it)"


def test_same_named_classes_in_different_modules_do_not_collide() -> None:
    found = findings(MULTI)
    assert "PlainSubclass" not in found  # derives from hub_pkg.plain.ProxyConnector
    real = found["RealSubclass"]
    assert real.base_chain == ["hub_pkg.real.ProxyConnector", "aiohttp.TCPConnector"]
    assert real.verdict == audit.LOSES
    assert sorted(found) == [
        "GrandLeafConnector",
        "LeafCallsMiddleConnector",
        "LeafConnector",
        "LeafOverLossyConnector",
        "LossyMiddleConnector",
        "MiddleConnector",
        "RealSubclass",
    ]


def test_aiohttp_own_package_is_skipped() -> None:
    report = audit.run([VENDORED])
    # vendored/aiohttp/connector.py overrides connect without super(): ignored.
    assert [(f.file, f.cls) for f in report.findings] == [
        ("uses_vendored.py", "GoodConnector")
    ]
    assert report.files_scanned == 1
    assert audit.main([str(VENDORED)]) == 0


@pytest.fixture
def lossy_tree(tmp_path: Path) -> Path:
    shutil.copy(BASIC / "loses.py", tmp_path / "loses.py")
    return tmp_path


def test_syntax_error_is_reported_and_skipped(lossy_tree: Path) -> None:
    (lossy_tree / "broken.py").write_text("class Broken(TCPConnector:\n    pass\n")
    report = audit.run([lossy_tree])
    assert [p for p, _ in report.skipped] == ["broken.py"]
    assert report.skipped[0][1].startswith("SyntaxError: ")
    assert "(line 1)" in report.skipped[0][1]
    assert [f.cls for f in report.findings] == ["BareConnector"]  # the rest still ran
    assert audit.main([str(lossy_tree)]) == 1


def test_non_utf8_files(lossy_tree: Path) -> None:
    body = (BASIC / "loses.py").read_text().replace("BareConnector", "Latin1Connector")
    # Undeclared latin-1 bytes cannot be decoded: reported and skipped.
    (lossy_tree / "undeclared.py").write_bytes(b'"""caf\xe9"""\n' + body.encode())
    # With a PEP 263 declaration the same bytes are valid Python and analysed.
    declared = b'# -*- coding: latin-1 -*-\n"""caf\xe9"""\n' + body.encode()
    (lossy_tree / "declared.py").write_bytes(declared)
    report = audit.run([lossy_tree])
    assert [p for p, _ in report.skipped] == ["undeclared.py"]
    assert "utf-8" in report.skipped[0][1]
    assert sorted((f.file, f.cls) for f in report.findings) == [
        ("declared.py", "Latin1Connector"),
        ("loses.py", "BareConnector"),
    ]


def test_unreadable_file_is_reported_and_skipped(lossy_tree: Path) -> None:
    (lossy_tree / "dangling.py").symlink_to(lossy_tree / "missing.py")
    report = audit.run([lossy_tree])
    assert [p for p, _ in report.skipped] == ["dangling.py"]
    assert report.skipped[0][1].startswith("FileNotFoundError: ")
    assert [f.cls for f in report.findings] == ["BareConnector"]


def test_table_output(capsys: pytest.CaptureFixture[str], lossy_tree: Path) -> None:
    (lossy_tree / "broken.py").write_text("def (:\n")
    assert audit.main([str(lossy_tree)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| file:line | class | base chain |")
    assert out[2] == (
        "| loses.py:7 | BareConnector | aiohttp.BaseConnector | no | no "
        "| LOSES TIMEOUT |"
    )
    assert "1 connect override(s), 1 lose the connect timeout" in out[4]
    assert out[-1].startswith("- broken.py: SyntaxError: ")


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert audit.main(["--format", "json", str(MULTI)]) == 1
    data = json.loads(capsys.readouterr().out)
    by_class = {f["cls"]: f for f in data["findings"]}
    assert by_class["LeafConnector"]["verdict"] == audit.LOSES
    assert by_class["LeafConnector"]["qualname"] == "leaf_pkg.leaf.LeafConnector"
    assert by_class["MiddleConnector"]["calls_base"] == ["super().connect (line 6)"]
    assert data["skipped"] == []
    assert data["files_scanned"] == 7


def test_json_output_lists_skipped_files(
    capsys: pytest.CaptureFixture[str], lossy_tree: Path
) -> None:
    (lossy_tree / "broken.py").write_text("def (:\n")
    assert audit.main(["--format", "json", str(lossy_tree)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [f["cls"] for f in data["findings"]] == ["BareConnector"]
    assert [s["path"] for s in data["skipped"]] == ["broken.py"]
    assert data["skipped"][0]["reason"].startswith("SyntaxError: ")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.audit", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([str(BASIC)], 1),  # some overrides lose the timeout
        ([str(BASIC / "calls_super.py"), str(BASIC / "own_timeout.py")], 0),
        ([str(VENDORED)], 0),
        ([str(FIXTURES / "no-such-dir")], 2),
        (["--format", "xml", str(BASIC)], 2),
    ],
)
def test_exit_codes(args: list[str], code: int) -> None:
    result = run_cli(*args)
    assert result.returncode == code, result.stderr
    if code == 2:
        assert "usage:" in result.stderr
    else:
        assert result.stdout.startswith("| file:line |")


def test_default_paths_are_site_packages() -> None:
    paths = audit.default_paths()
    assert Path(sysconfig.get_paths()["purelib"]) in paths
    assert all(p.is_dir() for p in paths)


def test_record_writes_the_table_into_the_measurements_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import project

    doc = tmp_path / "measurements.md"
    monkeypatch.setattr(project, "MEASUREMENTS", doc)
    assert audit.main([str(BASIC / "calls_super.py")]) == 0
    assert not doc.exists()  # only when asked
    assert audit.main(["--record", "audit", str(BASIC / "calls_super.py")]) == 0
    table = capsys.readouterr().out.split("\n\n")[0]
    text = doc.read_text()
    assert "<!-- begin audit -->" in text
    assert "1 file(s) scanned" in text
    assert table.splitlines()[2] in text  # the finding's row, as printed
    assert " -m tools.audit --record audit " in text

"""tests/upstream-deselect.txt: each entry names a node and its one reason."""

from pathlib import Path

import pytest

from tools.pytest_upstream import read_deselect_file

ROOT = Path(__file__).resolve().parents[2]


def test_every_entry_has_a_reason() -> None:
    entries = read_deselect_file(ROOT / "tests" / "upstream-deselect.txt")
    for node, reason in entries.items():
        assert node.startswith("tests/test_") and "::" in node
        assert len(reason.split()) >= 3, node


def test_an_entry_without_reason_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "deselect.txt"
    bad.write_text("tests/test_x.py::test_y\n")
    with pytest.raises(pytest.UsageError, match="give a reason"):
        read_deselect_file(bad)

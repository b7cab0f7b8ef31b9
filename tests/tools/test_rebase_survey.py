"""make rebase-survey (tools/rebase_survey.py): the table it records."""

from __future__ import annotations

from tools.rebase_survey import Outcome, render


def test_a_stop_names_the_patch_and_the_files() -> None:
    stopped = Outcome("1.1", 0, "0002 (Fix b)", ("lib/a.py", "tests/t.py"))
    clean = Outcome("1.2", 3, "", ())
    intro, table_text, _ = render([stopped, clean], "1.0").split("\n\n")
    assert "from 1.0" in intro
    table = table_text.splitlines()
    assert table[-2] == "| 1.1 | stops at 0002 (Fix b) | `lib/a.py`, `tests/t.py` |"
    assert table[-1] == "| 1.2 | clean: 3 patches carried | — |"

"""towncrier fragments render under aiohttp's own config layout, in the
section their type names, and both changelog drafts are valid
reStructuredText. On a synthetic checkout; the real series' fragments are
checked in tests/integration/test_changelog_real.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.gitrepo import TYPES, commit, pristine_repo
from tests.tools.rst import rst_warnings, section
from tools.fragments import aiohttp_draft, our_draft
from tools.project import Pin, SeriesVersion

CODE = Path(__file__).resolve().parents[2]  # this project's CHANGES/
PIN = Pin("aiohttp", "9.9.9", "aiohttp-9.9.9.tar.gz", "0" * 64)  # synthetic
VERSION = SeriesVersion(PIN.version, "draft.1")
BREAKING = TYPES["breaking"]


@pytest.fixture(scope="module")
def aiohttp_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The draft of a checkout whose series adds one breaking, two fix notes."""
    tree = pristine_repo(tmp_path_factory.mktemp("changelog") / "aiohttp", PIN)
    commit(
        tree,
        "Add the fragments\n",
        {
            "CHANGES/9598.breaking.rst": (
                "Moved the connect timeout into :py:meth:`BaseConnector.connect`;\n"
                "a subclass that replaces it applies\n"
                "``ceil_timeout(timeout.connect, timeout.ceil_threshold)`` itself.\n"
            ),
            "CHANGES/9670.bugfix.rst": "Fixed a lost wake-up.\n",
            "CHANGES/9671.bugfix.rst": "Fixed a slot leaked by a trace callback.\n",
        },
    )
    return aiohttp_draft(tree, VERSION)


def test_fragment_lands_under_breaking_changes(aiohttp_text: str) -> None:
    body = section(aiohttp_text, BREAKING)
    assert "ceil_timeout(timeout.connect, timeout.ceil_threshold)" in body
    assert "BaseConnector.connect" in body
    assert "9598" in body
    assert aiohttp_text.startswith(str(VERSION))


def test_fix_fragments_land_under_bug_fixes(aiohttp_text: str) -> None:
    body = section(aiohttp_text, "Bug fixes")
    assert "(9670)" in body
    assert "(9671)" in body
    assert "9598" not in body


def test_fragments_are_in_no_other_section(aiohttp_text: str) -> None:
    for other in set(TYPES.values()) - {BREAKING, "Bug fixes"}:
        assert f"\n{other}\n" not in aiohttp_text


def test_aiohttp_draft_is_valid_rst(aiohttp_text: str) -> None:
    assert rst_warnings(aiohttp_text) == ""


def test_our_draft_is_valid_rst() -> None:
    text = our_draft(CODE, VERSION)
    assert text.startswith(str(VERSION))
    assert "Packaging" in text
    assert rst_warnings(text) == ""


def test_rst_check_catches_broken_markup() -> None:
    assert "Inline literal start-string without end-string" in rst_warnings("a ``b\n")

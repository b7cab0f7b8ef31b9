"""The real series' towncrier fragments in build/aiohttp (run after
`make apply`) render under aiohttp's own config: the connect-timeout move
under breaking changes, the fixes under bug fixes, nothing elsewhere, and
the draft is valid reStructuredText."""

from __future__ import annotations

import pytest

from tests.tools.rst import rst_warnings, section
from tools.fragments import aiohttp_draft
from tools.project import CHECKOUT, require_checkout, series_version

BREAKING = "Removals and backward incompatible breaking changes"


@pytest.fixture(scope="module")
def aiohttp_text() -> str:
    require_checkout(CHECKOUT)  # fails, not skips: make test runs this after apply
    if not (CHECKOUT / "CHANGES" / "9598.breaking.rst").exists():
        pytest.fail(f"{CHECKOUT} has no CHANGES/9598.breaking.rst: run `make apply`")
    return aiohttp_draft(CHECKOUT)


def test_fragment_lands_under_breaking_changes(aiohttp_text: str) -> None:
    body = section(aiohttp_text, BREAKING)
    assert "ceil_timeout(timeout.connect, timeout.ceil_threshold)" in body
    assert "BaseConnector.connect" in body
    assert "9598" in body
    assert aiohttp_text.startswith(str(series_version()))


def test_fix_fragments_land_under_bug_fixes(aiohttp_text: str) -> None:
    body = " ".join(section(aiohttp_text, "Bug fixes").split())
    assert "(9670)" in body  # the lost wake-up
    assert "(4936)" in body  # one connection over the limit
    # fixes with no upstream issue: towncrier's orphan fragments (+name)
    assert "tracing callback raised" in body
    assert "waiting until its connect timeout while a connection slot" in body
    assert "requests queued for a free connection slot waiting" in body
    assert "9598" not in body and "9671" not in body  # no other author's PR


def test_fragments_are_in_no_other_section(aiohttp_text: str) -> None:
    for other in (
        "Features",
        "Deprecations (removal in next major release)",
        "Improved documentation",
        "Packaging updates and notes for downstreams",
        "Contributor-facing changes",
        "Miscellaneous internal changes",
    ):
        assert f"\n{other}\n" not in aiohttp_text


def test_aiohttp_draft_is_valid_rst(aiohttp_text: str) -> None:
    assert rst_warnings(aiohttp_text) == ""

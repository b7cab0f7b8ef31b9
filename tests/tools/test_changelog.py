"""The series' towncrier fragment renders under aiohttp's own config, and
both changelog drafts are valid reStructuredText."""

from __future__ import annotations

import io
import re

import pytest
from docutils import nodes  # type: ignore[import-untyped]
from docutils.core import publish_doctree  # type: ignore[import-untyped]
from docutils.parsers.rst import roles  # type: ignore[import-untyped]

from tools.changelog import aiohttp_draft, our_draft, series_version
from tools.patchq import CHECKOUT

BREAKING = "Removals and backward incompatible breaking changes"

# aiohttp's docs are built by Sphinx, whose Python domain adds these roles;
# plain docutils stands in with literals so that only real errors remain.
for role in ("py:class", "py:meth", "py:func", "py:exc", "py:attr", "py:mod"):
    roles.register_generic_role(role, nodes.literal)


def rst_warnings(text: str) -> str:
    stream = io.StringIO()
    publish_doctree(
        text,
        settings_overrides={
            "report_level": 2,
            "halt_level": 5,
            "warning_stream": stream,
        },
    )
    return stream.getvalue()


def section(text: str, title: str) -> str:
    """The body under a towncrier section title, up to the next title."""
    match = re.search(
        rf"^{re.escape(title)}\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", text, re.M | re.S
    )
    assert match, f"no section {title!r} in:\n{text}"
    return match.group(1)


@pytest.fixture(scope="module")
def aiohttp_text() -> str:
    if not (CHECKOUT / "CHANGES" / "9598.breaking.rst").exists():
        pytest.fail("build/aiohttp has no CHANGES/9598.breaking.rst: run `make apply`")
    return aiohttp_draft()


def test_fragment_lands_under_breaking_changes(aiohttp_text: str) -> None:
    body = section(aiohttp_text, BREAKING)
    assert "ceil_timeout(timeout.connect, timeout.ceil_threshold)" in body
    assert "BaseConnector.connect" in body
    assert "9598" in body
    assert aiohttp_text.startswith(series_version())


def test_fix_fragments_land_under_bug_fixes(aiohttp_text: str) -> None:
    body = section(aiohttp_text, "Bug fixes")
    assert "(9670)" in body  # the lost wake-up
    assert "(9671)" in body  # the slot leaked by a failing trace callback
    assert "9598" not in body


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


def test_our_draft_is_valid_rst() -> None:
    text = our_draft()
    assert "Packaging" in text
    assert rst_warnings(text) == ""


def test_rst_check_catches_broken_markup() -> None:
    assert "Inline literal start-string without end-string" in rst_warnings("a ``b\n")

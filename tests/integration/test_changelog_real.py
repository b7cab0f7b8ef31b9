"""The real series' towncrier fragments in build/aiohttp (run after
`make apply`) render under aiohttp's own config: the connect-timeout move
under breaking changes, the two fixes under bug fixes, nothing elsewhere,
and the draft is valid reStructuredText."""

from __future__ import annotations

import io
import re

import pytest
from docutils import nodes  # type: ignore[import-untyped]
from docutils.core import publish_doctree  # type: ignore[import-untyped]
from docutils.parsers.rst import roles  # type: ignore[import-untyped]

from tools.fragments import aiohttp_draft
from tools.project import CHECKOUT, require_checkout, series_version

BREAKING = "Removals and backward incompatible breaking changes"

# Sphinx's Python-domain roles, as literals for plain docutils.
for role in ("py:class", "py:meth", "py:func", "py:exc", "py:attr", "py:mod"):
    roles.register_generic_role(role, nodes.literal)


def section(text: str, title: str) -> str:
    """The body under a towncrier section title, up to the next title."""
    match = re.search(
        rf"^{re.escape(title)}\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", text, re.M | re.S
    )
    assert match, f"no section {title!r} in:\n{text}"
    return match.group(1)


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
    stream = io.StringIO()
    publish_doctree(
        aiohttp_text,
        settings_overrides={
            "report_level": 2,
            "halt_level": 5,
            "warning_stream": stream,
        },
    )
    assert stream.getvalue() == ""

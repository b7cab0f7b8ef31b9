"""Reading towncrier drafts in tests: sections and reStructuredText warnings."""

from __future__ import annotations

import io
import re

from docutils import nodes  # type: ignore[import-untyped]
from docutils.core import publish_doctree  # type: ignore[import-untyped]
from docutils.parsers.rst import roles  # type: ignore[import-untyped]

# aiohttp's docs are built by Sphinx, whose Python domain adds these roles;
# plain docutils stands in with literals so that only real errors remain.
for role in ("py:class", "py:meth", "py:func", "py:exc", "py:attr", "py:mod"):
    roles.register_generic_role(role, nodes.literal)


def rst_warnings(text: str) -> str:
    """What docutils warns about text (empty when it is valid RST)."""
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

"""Behaviour tests of the series. They run against whatever aiohttp is
installed: the patched build (`make test`), pristine 3.10.10
(`make test-pristine`), an installed wheel or another Python (tox)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from .connect_helpers import Backend

pytest_plugins = ["aiohttp.pytest_plugin"]


@pytest.fixture
async def server(aiohttp_server: Any) -> tuple[TestServer, Backend]:
    """A local server running ``connect_helpers.Backend``."""
    backend = Backend()
    return await aiohttp_server(backend.app), backend


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--expect-pristine",
        action="store_true",
        help="aiohttp is pristine 3.10.10: tests marked proves_patch must fail "
        "(strict xfail) and every other test must pass",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "proves_patch: fails on pristine aiohttp 3.10.10, passes with the series",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getoption("--expect-pristine"):
        return
    for item in items:
        if item.get_closest_marker("proves_patch"):
            item.add_marker(
                pytest.mark.xfail(
                    strict=True, reason="proves the patch: must fail on pristine"
                )
            )

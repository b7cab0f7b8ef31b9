"""Behaviour tests of the series. They run against whatever aiohttp is
installed: the patched build (`make test`), pristine 3.10.10
(`make test-pristine`), an installed wheel or another Python (tox), and
other aiohttp releases (`make races`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
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
        help="aiohttp is the pristine release the series is pinned to: tests "
        "marked proves_patch (proves_forward with AIOHTTP_SERIES=forward) must "
        "fail (strict xfail) and every other test must pass",
    )
    parser.addoption(
        "--record-outcomes",
        metavar="FILE",
        help="write each test's outcome and proves_patch marker to FILE (JSON), "
        "for the race table (tools/races.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "proves_patch(*patches): fails on pristine aiohttp 3.10.10, passes with "
        "the series; `patches` are the numbers of the patches whose fixes it "
        'shows ("0002")',
    )
    config.addinivalue_line(
        "markers",
        "proves_forward(*patches): fails on the newest aiohttp release that the "
        "forward series (forward/) is pinned to, passes with it; `patches` are "
        "the numbers of the forward patches whose fixes it shows",
    )
    # aiohttp 3.12 and later warn that their plugin, which these tests use on
    # every release, will go in 4.0; that is no failure of the release.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:aiohttp.pytest_plugin will be removed:DeprecationWarning",
    )
    if config.getoption("--record-outcomes"):
        config.pluginmanager.register(OutcomeRecorder(config), "outcome-recorder")


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getoption("--expect-pristine"):
        return
    # the forward series' patches are proven on the release it is pinned to
    forward = os.environ.get("AIOHTTP_SERIES") == "forward"
    marker = "proves_forward" if forward else "proves_patch"
    for item in items:
        if item.get_closest_marker(marker):
            item.add_marker(
                pytest.mark.xfail(
                    strict=True, reason="proves the patch: must fail on pristine"
                )
            )


def marker_args(item: pytest.Item, name: str) -> list[str]:
    """The patch numbers of every `name` marker on the test (its params' too)."""
    return sorted({arg for mark in item.iter_markers(name) for arg in mark.args})


class OutcomeRecorder:
    """Each test's outcome, with the function it runs and the patches it
    proves, written as JSON when the session ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.path = Path(config.getoption("--record-outcomes"))
        self.tests: dict[str, dict[str, Any]] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:  # what runs, after -k and --deselect
            function = getattr(item, "function", None)
            doc = (getattr(function, "__doc__", None) or "").strip()
            name = getattr(item, "originalname", item.name)
            self.tests[item.nodeid] = {
                "function": f"{item.path.name}::{name}",
                "scenario": doc.splitlines()[0] if doc else item.name,
                "proves": marker_args(item, "proves_patch"),
                "forward": marker_args(item, "proves_forward"),
                "outcome": "not run",
            }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test = self.tests.get(report.nodeid)
        if test is None:
            return
        if report.failed:
            test["outcome"] = "failed"
        elif report.when == "call" or report.skipped:
            test["outcome"] = "skipped" if report.skipped else "passed"

    def pytest_sessionfinish(self) -> None:
        self.path.write_text(json.dumps(self.tests, indent=1) + "\n", "utf-8")

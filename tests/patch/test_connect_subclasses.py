"""The documented break: subclasses that override BaseConnector.connect().

The session no longer times the whole of ``connect()``: only the base
class's own waiting and connecting are bounded by ClientTimeout.connect, so
a ``connect()`` that skips or adds to the base one changes behaviour, as the
changelog says. The series is described in ``connect_helpers.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp.helpers import ceil_timeout
from aiohttp.test_utils import TestServer

from .connect_helpers import (
    CONNECT,
    GUARD,
    SLACK,
    Backend,
    connect_timeout,
    request_port,
)


class ReplacingConnector(aiohttp.TCPConnector):
    """A subclass that replaces connect() entirely: no super(), no timeout."""

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,
    ) -> Any:
        await asyncio.get_running_loop().create_future()


class TimedReplacingConnector(aiohttp.TCPConnector):
    """Replaces connect() and applies the connect timeout itself."""

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,
    ) -> Any:
        async with ceil_timeout(timeout.connect, timeout.ceil_threshold):
            await asyncio.get_running_loop().create_future()


@pytest.mark.proves_patch("0001")
async def test_replaced_connect_is_not_bounded_by_connect_timeout(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """A connect() that skips the base class is no longer timed by the session."""
    outer = CONNECT * 3
    async with aiohttp.ClientSession(
        connector=ReplacingConnector(), timeout=connect_timeout(CONNECT)
    ) as session:
        start = loop.time()
        with pytest.raises(asyncio.TimeoutError) as exc_info:
            await asyncio.wait_for(session.get("http://127.0.0.1:9/"), outer)
        elapsed = loop.time() - start

    # it was the outer bound that fired, not ClientTimeout.connect
    assert not isinstance(exc_info.value, aiohttp.ConnectionTimeoutError)
    assert elapsed >= outer - 0.05


async def test_replaced_connect_applying_ceil_timeout_is_bounded(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The remedy from the changelog: ceil_timeout in connect() bounds it again."""
    async with aiohttp.ClientSession(
        connector=TimedReplacingConnector(), timeout=connect_timeout(CONNECT)
    ) as session:
        start = loop.time()
        with pytest.raises(aiohttp.ConnectionTimeoutError):
            await asyncio.wait_for(session.get("http://127.0.0.1:9/"), CONNECT * 10)
        elapsed = loop.time() - start

    assert CONNECT - 0.05 <= elapsed <= CONNECT + SLACK


class WorkAroundSuperConnector(aiohttp.TCPConnector):
    """Awaits work of its own before or after extending connect() via super()."""

    def __init__(self, work: float, where: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.work, self.where = work, where

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,
    ) -> Any:
        if self.where == "before":
            await asyncio.sleep(self.work)
        conn = await super().connect(req, traces, timeout)
        if self.where == "after":
            try:
                await asyncio.sleep(self.work)
            except BaseException:
                conn.close()
                raise
        return conn


@pytest.mark.proves_patch("0001")
@pytest.mark.parametrize("where", ["before", "after"])
async def test_work_around_super_connect_is_not_bounded_by_connect_timeout(
    loop: asyncio.AbstractEventLoop, server: tuple[TestServer, Backend], where: str
) -> None:
    """Work a subclass awaits around super().connect() runs past ``connect``.

    3.10.10 timed the whole of connect(), so this request ended with
    ConnectionTimeoutError after ``connect``; now only the base class's own
    waiting and connecting are bounded (the changelog says so).
    """
    srv, _ = server
    work = CONNECT * 3
    connector = WorkAroundSuperConnector(work, where)
    async with aiohttp.ClientSession(
        connector=connector, timeout=connect_timeout(CONNECT)
    ) as session:
        start = loop.time()
        port = await asyncio.wait_for(request_port(session, srv.make_url("/")), GUARD)
        elapsed = loop.time() - start

    assert port.isdigit()
    assert elapsed >= work - 0.05

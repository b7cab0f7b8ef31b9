"""Shared pieces of the connect-timeout behaviour tests (aiohttp #9598).

The series moves the connect timeout from ``ClientSession._request`` into
``BaseConnector.connect``, around only the steps that can block: waiting for
a free slot and creating a connection. Reusing a pooled connection enters no
timeout context at all. It also fixes the slot races of that code: a waiter
cancelled just after being woken swallowed the free slot (aiohttp #9670); a
trace callback that raised or timed out left a placeholder, a waiter or an
open connection behind; a slot freed for a queued request could be counted
free once more before it ran (aiohttp #4936); a newcomer could queue behind
an emptied queue until its timeout; closing the connector left queued
requests waiting.

The tests live in ``test_connect_timeout_placement.py`` (where the timeout
applies), ``test_connect_subclasses.py`` (the documented break for
subclasses), ``test_connect_limits.py`` and ``test_connect_wakeups.py``
(slots and wake-ups), ``test_connect_load.py`` (limits under load) and
``test_connect_traces.py`` (trace callbacks); this module is not a test
module, so they share it without importing one another. They observe what
a user sees where they can (the server's view of requests and connections,
exceptions, times), so that they run on any aiohttp release (make races).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

CONNECT = 0.3  # short connect timeout, in seconds
SLACK = 1.5  # generous upper margin for "after about CONNECT seconds"
GUARD = CONNECT + SLACK + 1  # fail instead of hanging if no timeout fires
HANG_URL = "http://never-resolves.test/"


class HangingResolver(AbstractResolver):
    """A resolver whose lookups never finish, so connecting hangs."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = asyncio.Event()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        self.started.set()
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


def hanging_connector(
    cls: type[aiohttp.TCPConnector] = aiohttp.TCPConnector, **kwargs: Any
) -> tuple[aiohttp.TCPConnector, HangingResolver]:
    """A connector whose attempts to create a connection hang in DNS."""
    resolver = HangingResolver()
    connector = cls(resolver=resolver, use_dns_cache=False, **kwargs)
    return connector, resolver


def assert_connector_idle(connector: aiohttp.BaseConnector) -> None:
    """Nothing acquired, no placeholder, no waiter left behind."""
    assert not connector._acquired
    assert not connector._acquired_per_host
    assert not connector._waiters


def connect_timeout(connect: float | None, **kwargs: Any) -> aiohttp.ClientTimeout:
    """A ClientTimeout whose only deadline is the connect timeout."""
    return aiohttp.ClientTimeout(total=None, connect=connect, **kwargs)


class Backend:
    """A local server: ``/`` answers the client port (and records the
    ``?who=`` of the request), ``/hold`` sends its headers and then waits on
    a gate, ``/busy`` waits on the gate before it answers as ``/`` does and
    counts the requests it handles at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.arrivals: list[str] = []  # ?who= of the requests served, in order
        self.busy = 0
        self.max_busy = 0
        self._busy_changed = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_get("/", self.port)
        self.app.router.add_get("/hold", self.hold)
        self.app.router.add_get("/busy", self.busy_port)

    async def port(self, request: web.Request) -> web.Response:
        if "who" in request.query:
            self.arrivals.append(request.query["who"])
        assert request.transport is not None
        return web.Response(text=str(request.transport.get_extra_info("peername")[1]))

    async def hold(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await self.gate.wait()
        await resp.write(b"held")
        return resp

    async def busy_port(self, request: web.Request) -> web.Response:
        self.busy += 1
        self.max_busy = max(self.max_busy, self.busy)
        self._busy_changed.set()
        try:
            await self.gate.wait()
        finally:
            self.busy -= 1
        return await self.port(request)

    async def wait_busy(self, count: int) -> None:
        """Until `count` requests are in /busy at once (bounded by GUARD)."""

        async def reached() -> None:
            while self.busy < count:
                self._busy_changed.clear()
                await self._busy_changed.wait()

        try:
            await asyncio.wait_for(reached(), GUARD)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{self.busy} request(s) in the handler, never {count}"
            ) from None


class OpenConnections:
    """The connections a test server has open, as the server sees them."""

    def __init__(self, server: Any) -> None:
        self.open: set[Any] = set()
        web_server = server.runner.server  # aiohttp.web.Server
        real_made, real_lost = web_server.connection_made, web_server.connection_lost

        def connection_made(handler: Any, transport: Any) -> None:
            self.open.add(handler)
            real_made(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self.open.discard(handler)
            real_lost(handler, exc)

        web_server.connection_made = connection_made
        web_server.connection_lost = connection_lost

    async def wait_all_closed(self) -> None:
        """Until the client has closed every connection (bounded by GUARD)."""
        for _ in range(int(GUARD / 0.01)):
            if not self.open:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.open)} connection(s) left open")


class QueueWatch:
    """Counts requests queued for a slot, through the public trace signal."""

    def __init__(self) -> None:
        self.queued = 0
        self.config = aiohttp.TraceConfig()
        self.config.on_connection_queued_start.append(self._on_queued)

    async def _on_queued(self, session: Any, ctx: Any, params: Any) -> None:
        self.queued += 1

    async def wait_queued(self, count: int) -> None:
        for _ in range(1000):
            if self.queued >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{self.queued} request(s) queued, never {count}")


async def request_port(session: aiohttp.ClientSession, url: Any, **kwargs: Any) -> str:
    async with session.get(url, **kwargs) as resp:
        assert resp.status == 200
        return await resp.text()


async def get(session: aiohttp.ClientSession, url: Any, **kwargs: Any) -> Any:
    """``session.get()`` as a coroutine, for ``asyncio.create_task()``."""
    return await session.get(url, **kwargs)


async def finish(*tasks: asyncio.Task[Any]) -> None:
    """Cancel what a failed test left running, and wait for it to end."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for_waiter(connector: aiohttp.BaseConnector, count: int = 1) -> None:
    for _ in range(1000):
        if sum(map(len, connector._waiters.values())) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"fewer than {count} requests got queued")

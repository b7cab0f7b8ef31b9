"""Shared pieces of the connect-timeout behaviour tests (aiohttp #9598).

The series moves the connect timeout from ``ClientSession._request`` into
``BaseConnector.connect``, around only the steps that can block: waiting for
a free slot and creating a connection. Reusing a pooled connection enters no
timeout context at all. It also fixes two 3.10.10 bugs the timeout triggers
there: a waiter cancelled just after being woken swallowed the free slot
(aiohttp #9670), and a trace callback that raised or timed out left a
placeholder or a waiter behind for good.

The tests live in ``test_connect_timeout_placement.py`` (where the timeout
applies), ``test_connect_subclasses.py`` (the documented break for
subclasses), ``test_connect_limits.py`` (slots and wake-ups) and
``test_connect_traces.py`` (trace callbacks); this module is not a test
module, so they share it without importing one another.
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
    """A local server: ``/`` answers the client port, ``/hold`` waits on a gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_get("/", self.port)
        self.app.router.add_get("/hold", self.hold)

    async def port(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        return web.Response(text=str(request.transport.get_extra_info("peername")[1]))

    async def hold(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await self.gate.wait()
        await resp.write(b"held")
        return resp


async def request_port(session: aiohttp.ClientSession, url: Any, **kwargs: Any) -> str:
    async with session.get(url, **kwargs) as resp:
        assert resp.status == 200
        return await resp.text()


async def get(session: aiohttp.ClientSession, url: Any, **kwargs: Any) -> Any:
    """``session.get()`` as a coroutine, for ``asyncio.create_task()``."""
    return await session.get(url, **kwargs)


async def wait_for_waiter(connector: aiohttp.BaseConnector, count: int = 1) -> None:
    for _ in range(1000):
        if sum(map(len, connector._waiters.values())) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"fewer than {count} requests got queued")

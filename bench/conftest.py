"""Fixtures for the client benchmarks: one event loop, server and session each.

Everything is set up (and warmed up) outside the measured callable; the
callable runs one batch of requests with loop.run_until_complete, so the
benchmark measures the client's request path, plus the in-process server's
share of it, which both trees have in common.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

REQUESTS = 100  # per batch, i.e. per measured call
BODY = b"x" * 100

Batch = Callable[[], int]  # runs one batch, returns the number of 200 OKs


async def _handler(request: web.BaseRequest) -> web.Response:
    return web.Response(body=BODY)


async def _get(session: ClientSession, url: str, n: int) -> int:
    ok = 0
    for _ in range(n):
        async with session.get(url) as resp:
            await resp.read()
            ok += resp.status == 200
    return ok


@pytest.fixture
def make_batch() -> Iterator[Callable[..., Batch]]:
    """Factory: make_batch(timeout=..., concurrency=..., **connector_kwargs)."""
    loop = asyncio.new_event_loop()
    cleanups: list[Any] = []

    async def start_server() -> str:
        # Low-level server, no access log: keep the server's (common) share
        # of the instructions small so the client's changes show.
        runner = web.ServerRunner(web.Server(_handler, access_log=None))
        await runner.setup()
        cleanups.append(runner.cleanup)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # only ever loopback
        await web.SockSite(runner, sock).start()
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}/"

    def make(
        timeout: ClientTimeout | None = None,
        concurrency: int = 1,
        requests: int = REQUESTS,
        **connector_kwargs: Any,
    ) -> Batch:
        url = loop.run_until_complete(start_server())

        async def new_session() -> ClientSession:
            kwargs: dict[str, Any] = {"connector": TCPConnector(**connector_kwargs)}
            if timeout is not None:
                kwargs["timeout"] = timeout
            return ClientSession(**kwargs)

        session = loop.run_until_complete(new_session())
        cleanups.append(session.close)
        per_worker, rest = divmod(requests, concurrency)
        assert rest == 0, "requests must split evenly over the workers"

        async def batch() -> int:
            if concurrency == 1:
                return await _get(session, url, requests)
            counts = asyncio.gather(
                *(_get(session, url, per_worker) for _ in range(concurrency))
            )
            return sum(await counts)

        def run() -> int:
            return loop.run_until_complete(batch())

        # Warm-up: open the pooled connection(s), fill caches, import lazily
        # imported modules, so the measured call sees the steady state.
        assert run() == requests
        return run

    yield make
    for cleanup in reversed(cleanups):
        loop.run_until_complete(cleanup())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()

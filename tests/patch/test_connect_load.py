"""Load through a limited connector with the connect timeout in the connector.

2,000 requests at concurrency 200 through ``limit=10`` against a local server:
the limit holds, timed out waiters leave nothing behind and every request
ends either with a response or with ``ConnectionTimeoutError``.
"""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import aiohttp
import pytest
from aiohttp import web

N_REQUESTS = 2000
CONCURRENCY = 200
LIMIT = 10
CONNECT = 0.25  # connect timeout, in seconds
HOLD = 3 * CONNECT  # the first LIMIT requests keep their slot this long
MAX_DELAY_MS = 3


class CountingBackend:
    """Counts connections and requests that the server handles at once."""

    def __init__(self) -> None:
        self.received = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.open: set[Any] = set()
        self.max_open = 0
        self.serving: set[Any] = set()  # open connections that got a request
        self.max_serving = 0
        self.max_acquired = 0
        self.connector: aiohttp.BaseConnector | None = None
        self.app = web.Application()
        self.app.router.add_get("/", self.handler)

    def watch(self, server: web.Server) -> None:
        real_made, real_lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: Any) -> None:
            self.open.add(handler)
            self.max_open = max(self.max_open, len(self.open))
            real_made(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self.open.discard(handler)
            self.serving.discard(handler)
            real_lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    async def handler(self, request: web.Request) -> web.Response:
        self.received += 1
        self.serving.add(request.protocol)
        self.max_serving = max(self.max_serving, len(self.serving))
        assert self.connector is not None
        self.max_acquired = max(self.max_acquired, len(self.connector._acquired))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.received <= LIMIT:
                # hold every slot: all the requests queued meanwhile time out
                await asyncio.sleep(HOLD)
            else:
                await asyncio.sleep(int(request.query["ms"]) / 1000)
        finally:
            self.in_flight -= 1
        return web.Response(text="ok")


async def test_load_through_limited_connector(
    aiohttp_server: Any, recwarn: pytest.WarningsRecorder
) -> None:
    """Limit, outcomes and cleanup hold under 200 concurrent requests."""
    backend = CountingBackend()
    server = await aiohttp_server(backend.app)
    assert server.runner is not None and server.runner.server is not None
    backend.watch(server.runner.server)

    rnd = random.Random(9598)
    delays = [rnd.randint(0, MAX_DELAY_MS) for _ in range(N_REQUESTS)]
    todo = iter(range(N_REQUESTS))
    outcomes = {"ok": 0, "timeout": 0}

    connector = aiohttp.TCPConnector(limit=LIMIT)
    backend.connector = connector
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT)

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in todo:
            url = server.make_url("/").with_query(ms=delays[i])
            try:
                async with session.get(url) as resp:
                    assert await resp.text() == "ok"
                outcomes["ok"] += 1
            except aiohttp.ConnectionTimeoutError:
                outcomes["timeout"] += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        workers = [worker(session) for _ in range(CONCURRENCY)]
        await asyncio.wait_for(asyncio.gather(*workers), 60)

        assert outcomes["ok"] + outcomes["timeout"] == N_REQUESTS
        assert outcomes["ok"] == backend.received
        assert outcomes["ok"] > 0
        # every request queued behind the held slots gave up
        assert outcomes["timeout"] >= CONCURRENCY - LIMIT

        assert backend.max_acquired <= LIMIT
        assert backend.max_in_flight <= LIMIT
        assert backend.max_serving <= LIMIT
        assert not connector._waiters
        assert not connector._acquired
        assert not connector._acquired_per_host
        assert sum(map(len, connector._conns.values())) <= LIMIT

    for _ in range(100):  # the server sees the pooled connections go
        if not backend.open:
            break
        await asyncio.sleep(0.01)
    assert not backend.open
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


# Random cancels, timeouts and failing trace callbacks -------------------------

STORM_REQUESTS = 600
STORM_CONCURRENCY = 50
STORM_LIMIT = 5
STORM_BOUND = 2.0  # every request of the storm is cancelled after this long
SIGNALS = (
    "connection_queued_start",
    "connection_queued_end",
    "connection_create_start",
    "connection_create_end",
    "connection_reuseconn",
)


class InjectedError(Exception):
    """Raised by a trace callback on purpose."""


def storm_trace_config() -> aiohttp.TraceConfig:
    """Callbacks that raise or hang where a request's plan says so."""
    config = aiohttp.TraceConfig()
    for signal in SIGNALS:

        async def callback(
            session: Any, ctx: Any, params: Any, signal: str = signal
        ) -> None:
            plan = ctx.trace_request_ctx or {}
            if plan.get("fail_at") != signal:
                return
            if plan["hang"]:  # until the connect timeout or the cancel
                await asyncio.get_running_loop().create_future()
            raise InjectedError(signal)

        getattr(config, f"on_{signal}").append(callback)
    return config


@pytest.mark.proves_patch
async def test_random_failures_leave_the_connector_empty(
    aiohttp_server: Any, recwarn: pytest.WarningsRecorder
) -> None:
    """Requests cancelled, timed out and failing in trace callbacks at random.

    600 requests at concurrency 50 through limit=5; about one in ten has a
    trace callback raise or hang, one in five a connect timeout short enough
    to fire while it waits or connects, one in six is cancelled after a few
    milliseconds. Afterwards nothing may stay acquired or queued, and every
    later request must be served. 3.10.10 leaks a slot or a waiter for each
    such failure in a callback and ends up refusing every request.
    """
    backend = CountingBackend()
    server = await aiohttp_server(backend.app)
    assert server.runner is not None and server.runner.server is not None
    backend.watch(server.runner.server)
    backend.received = LIMIT  # the handler's hold phase is for the test above

    rnd = random.Random(9670)
    outcomes: dict[str, int] = {}
    todo = iter(range(STORM_REQUESTS))
    connector = aiohttp.TCPConnector(limit=STORM_LIMIT)
    backend.connector = connector

    async def one(session: aiohttp.ClientSession, plan: dict[str, Any]) -> str:
        url = server.make_url("/").with_query(ms=plan["ms"])
        async with session.get(
            url, trace_request_ctx=plan, timeout=plan["timeout"]
        ) as resp:
            assert await resp.text() == "ok"
        return "ok"

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in todo:
            fail = rnd.random() < 0.1
            plan = {
                "ms": rnd.randint(0, 3),
                "fail_at": rnd.choice(SIGNALS) if fail else None,
                "hang": rnd.random() < 0.5,
                "timeout": aiohttp.ClientTimeout(
                    connect=rnd.uniform(0.005, 0.05) if rnd.random() < 0.2 else 1.0
                ),
            }
            task = asyncio.create_task(one(session, plan))
            if rnd.random() < 1 / 6:
                asyncio.get_running_loop().call_later(rnd.uniform(0, 0.01), task.cancel)
            try:
                outcome = await asyncio.wait_for(task, STORM_BOUND)
            except asyncio.CancelledError:
                outcome = "cancelled"
            except asyncio.TimeoutError as exc:  # the bound, or connect
                outcome = type(exc).__name__
            except InjectedError:
                outcome = "trace callback failed"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    async with aiohttp.ClientSession(
        connector=connector, trace_configs=[storm_trace_config()]
    ) as session:
        workers = [worker(session) for _ in range(STORM_CONCURRENCY)]
        await asyncio.wait_for(asyncio.gather(*workers), 60)

        assert sum(outcomes.values()) == STORM_REQUESTS
        assert outcomes["ok"] > STORM_REQUESTS * 0.4
        assert outcomes["trace callback failed"] > 0
        assert outcomes["ConnectionTimeoutError"] > 0
        assert outcomes["cancelled"] > 0
        assert backend.max_in_flight <= STORM_LIMIT
        assert backend.max_acquired <= STORM_LIMIT
        # nothing acquired, no placeholder, no waiter left behind ...
        assert not connector._acquired
        assert not connector._acquired_per_host
        assert not connector._waiters
        # ... and every later request is served
        later = [session.get(server.make_url("/").with_query(ms=0)) for _ in range(20)]
        responses = await asyncio.wait_for(asyncio.gather(*later), 10)
        for resp in responses:
            assert resp.status == 200
            resp.release()

    for _ in range(100):
        if not backend.open:
            break
        await asyncio.sleep(0.01)
    assert not backend.open
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]

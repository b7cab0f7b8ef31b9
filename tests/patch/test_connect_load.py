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
        self.in_flight_per_host: dict[str, int] = {}
        self.max_in_flight_per_host = 0
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
        host = self.in_flight_per_host
        host[request.host] = host.get(request.host, 0) + 1
        self.max_in_flight_per_host = max(
            self.max_in_flight_per_host, host[request.host]
        )
        try:
            if self.received <= LIMIT:
                # hold every slot: all the requests queued meanwhile time out
                await asyncio.sleep(HOLD)
            else:
                await asyncio.sleep(int(request.query["ms"]) / 1000)
        finally:
            self.in_flight -= 1
            host[request.host] -= 1
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


class Storm:
    """STORM_REQUESTS requests at STORM_CONCURRENCY through the limits to
    `hosts` servers: about one in five with a connect timeout short enough
    to fire while it waits or connects, one in six cancelled after a few
    milliseconds and, with `trace_failures`, one in ten with a trace
    callback that raises or hangs. Afterwards the session stays open for
    the test's checks."""

    def __init__(
        self, limit: int, limit_per_host: int, hosts: int, trace_failures: bool
    ) -> None:
        self.hosts = hosts
        self.trace_failures = trace_failures
        self.backend = CountingBackend()
        self.backend.received = LIMIT  # the hold phase is for the load test
        self.connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=limit_per_host
        )
        self.backend.connector = self.connector
        self.outcomes: dict[str, int] = {}
        self.servers: list[Any] = []

    async def run(self, aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
        for _ in range(self.hosts):
            server = await aiohttp_server(self.backend.app)
            assert server.runner is not None and server.runner.server is not None
            self.backend.watch(server.runner.server)
            self.servers.append(server)
        rnd = random.Random(9670)
        todo = iter(range(STORM_REQUESTS))

        async def one(plan: dict[str, Any]) -> str:
            url = plan["server"].make_url("/").with_query(ms=plan["ms"])
            async with session.get(
                url, trace_request_ctx=plan, timeout=plan["timeout"]
            ) as resp:
                assert await resp.text() == "ok"
            return "ok"

        async def worker() -> None:
            for _ in todo:
                fail = self.trace_failures and rnd.random() < 0.1
                plan = {
                    "server": rnd.choice(self.servers),
                    "ms": rnd.randint(0, 3),
                    "fail_at": rnd.choice(SIGNALS) if fail else None,
                    "hang": rnd.random() < 0.5,
                    "timeout": aiohttp.ClientTimeout(
                        connect=rnd.uniform(0.005, 0.05) if rnd.random() < 0.2 else 1.0
                    ),
                }
                task = asyncio.create_task(one(plan))
                if rnd.random() < 1 / 6:
                    delay = rnd.uniform(0, 0.01)
                    asyncio.get_running_loop().call_later(delay, task.cancel)
                try:
                    outcome = await asyncio.wait_for(task, STORM_BOUND)
                except asyncio.CancelledError:
                    outcome = "cancelled"
                except asyncio.TimeoutError as exc:  # the bound, or connect
                    outcome = type(exc).__name__
                except InjectedError:
                    outcome = "trace callback failed"
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(STORM_CONCURRENCY))), 60
        )
        assert sum(self.outcomes.values()) == STORM_REQUESTS
        assert self.outcomes["ok"] > STORM_REQUESTS * 0.4
        assert self.outcomes["ConnectionTimeoutError"] > 0
        assert self.outcomes["cancelled"] > 0
        if self.trace_failures:
            assert self.outcomes["trace callback failed"] > 0

    async def later_requests_are_served(self, session: aiohttp.ClientSession) -> None:
        later = [
            session.get(server.make_url("/").with_query(ms=0))
            for server in self.servers
            for _ in range(10)
        ]
        responses = await asyncio.wait_for(asyncio.gather(*later), 10)
        for resp in responses:
            assert resp.status == 200
            resp.release()

    async def connections_all_closed(self) -> None:
        for _ in range(100):  # after the session closed
            if not self.backend.open:
                break
            await asyncio.sleep(0.01)
        assert not self.backend.open


@pytest.mark.proves_patch("0003")
@pytest.mark.proves_forward("0001", "0002")
async def test_random_failures_leave_the_connector_empty(
    aiohttp_server: Any, recwarn: pytest.WarningsRecorder
) -> None:
    """Requests cancelled, timed out and failing in trace callbacks at random.

    600 requests at concurrency 50 through limit=5, a tenth of them with a
    trace callback that raises or hangs. Afterwards nothing may stay
    acquired or queued, every later request must be served, and no
    connection may stay open once the session is closed. 3.10.10 leaks a
    slot or a waiter for each such failure in a callback and ends up
    refusing every request.
    """
    storm = Storm(STORM_LIMIT, 0, hosts=1, trace_failures=True)
    async with aiohttp.ClientSession(
        connector=storm.connector, trace_configs=[storm_trace_config()]
    ) as session:
        await storm.run(aiohttp_server, session)
        assert storm.backend.max_in_flight <= STORM_LIMIT
        assert storm.backend.max_acquired <= STORM_LIMIT
        # nothing acquired, no placeholder, no waiter left behind ...
        assert not storm.connector._acquired
        assert not storm.connector._acquired_per_host
        assert not storm.connector._waiters
        # ... and every later request is served
        await storm.later_requests_are_served(session)
    await storm.connections_all_closed()
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


@pytest.mark.proves_patch("0004")
async def test_random_cancels_keep_limit_per_host(aiohttp_server: Any) -> None:
    """Cancels and connect timeouts at random never let limit_per_host=1 slip.

    600 requests at concurrency 50 to two hosts through limit_per_host=1,
    with no failing trace callback: no host may ever handle two requests
    at once, and every later request must be served. 3.10.10 woke a second
    request for a host whenever two slots were freed in one loop
    iteration before the first woken request ran.
    """
    storm = Storm(0, 1, hosts=2, trace_failures=False)
    async with aiohttp.ClientSession(connector=storm.connector) as session:
        await storm.run(aiohttp_server, session)
        assert storm.backend.max_in_flight_per_host <= 1
        await storm.later_requests_are_served(session)
    await storm.connections_all_closed()

"""ClientTimeout.connect once it is applied by the connector (aiohttp #9598).

The series moves the connect timeout from ``ClientSession._request`` into
``BaseConnector.connect``, around only the steps that can block: waiting for
a free slot and creating a connection. Reusing a pooled connection enters no
timeout context at all. It also fixes two 3.10.10 bugs the timeout triggers
there: a waiter cancelled just after being woken swallowed the free slot
(aiohttp #9670), and a trace callback that raised or timed out left a
placeholder or a waiter behind for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import socket
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import ceil_timeout
from aiohttp.test_utils import TestServer

if sys.version_info >= (3, 11):
    from asyncio import Timeout
else:  # what aiohttp.helpers.ceil_timeout() uses before Python 3.11
    from async_timeout import Timeout

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


class SuperConnector(aiohttp.TCPConnector):
    """A subclass whose connect() extends the base one through super()."""

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,
    ) -> Any:
        return await super().connect(req, traces, timeout)


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


@pytest.fixture
async def server(aiohttp_server: Any) -> tuple[TestServer, Backend]:
    backend = Backend()
    return await aiohttp_server(backend.app), backend


class TimeoutSpy:
    """Records timeout contexts entered and deadline timers armed, per task."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # (task, deadline or None) for each timeout context entered
        self.entered: list[tuple[asyncio.Task[Any] | None, float | None]] = []
        # (task, when) for each loop.call_at() armed by a timeout context
        self.timers: list[tuple[asyncio.Task[Any] | None, float]] = []
        real_aenter = Timeout.__aenter__
        real_call_at = loop.call_at

        async def aenter(cm: Any) -> Any:
            result = await real_aenter(cm)
            when = cm.when() if hasattr(cm, "when") else cm.deadline
            self.entered.append((asyncio.current_task(), when))
            return result

        def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(getattr(callback, "__self__", None), Timeout):
                self.timers.append((asyncio.current_task(), when))
            return real_call_at(when, callback, *args, **kwargs)

        monkeypatch.setattr(Timeout, "__aenter__", aenter)
        monkeypatch.setattr(loop, "call_at", call_at)

    def clear(self) -> None:
        self.entered.clear()
        self.timers.clear()

    def entered_by(self, task: asyncio.Task[Any]) -> list[float | None]:
        return [when for t, when in self.entered if t is task]

    def timers_of(self, task: asyncio.Task[Any]) -> list[float]:
        return [when for t, when in self.timers if t is task]


@pytest.fixture
def timeout_spy(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TimeoutSpy]:
    yield TimeoutSpy(loop, monkeypatch)


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


# 1. reuse path ------------------------------------------------------------


@pytest.mark.proves_patch
@pytest.mark.parametrize("traced", [False, True], ids=["no-traces", "traces"])
@pytest.mark.parametrize(
    "connect",
    [None, 1.0, 5.0, 10.0],
    ids=["connect=None", "below-threshold", "at-threshold", "above-threshold"],
)
async def test_reused_connection_enters_no_timeout(
    server: tuple[TestServer, Backend],
    timeout_spy: TimeoutSpy,
    connect: float | None,
    traced: bool,
) -> None:
    """Reusing a pooled connection enters no timeout and arms no deadline."""
    srv, _ = server
    trace_configs = [aiohttp.TraceConfig()] if traced else []
    async with aiohttp.ClientSession(
        timeout=connect_timeout(connect), trace_configs=trace_configs
    ) as session:
        first_port = await request_port(session, srv.make_url("/"))
        # the first request had to create its connection under the timeout
        task = asyncio.current_task()
        assert task is not None
        assert timeout_spy.entered_by(task)

        timeout_spy.clear()
        second_port = await request_port(session, srv.make_url("/"))

    assert second_port == first_port  # the pooled connection was reused
    assert timeout_spy.entered_by(task) == []
    assert timeout_spy.timers_of(task) == []


# 2. create path -------------------------------------------------------------


@pytest.mark.parametrize("cls", [aiohttp.TCPConnector, SuperConnector])
async def test_hanging_connection_attempt_times_out(
    loop: asyncio.AbstractEventLoop, cls: type[aiohttp.TCPConnector]
) -> None:
    """A connection that never gets created ends after about ``connect``."""
    connector, resolver = hanging_connector(cls)
    async with aiohttp.ClientSession(
        connector=connector, timeout=connect_timeout(CONNECT)
    ) as session:
        start = loop.time()
        with pytest.raises(aiohttp.ConnectionTimeoutError, match="Connection timeout"):
            await asyncio.wait_for(session.get(HANG_URL), GUARD)
        elapsed = loop.time() - start

        assert resolver.calls == 1
        assert CONNECT - 0.05 <= elapsed <= CONNECT + SLACK
        assert_connector_idle(connector)


@contextlib.contextmanager
def unaccepting_listener() -> Iterator[tuple[str, int]]:
    """A listening socket whose accept queue is full: connect() to it hangs."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(8):
            filler = stack.enter_context(socket.socket())
            filler.settimeout(0.2)
            try:
                filler.connect(address)
            except socket.timeout:  # the queue is full: SYNs get dropped now
                yield address
                return
        pytest.skip("the accept queue does not fill up on this system")


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux SYN drops")
async def test_unaccepted_connection_times_out(
    loop: asyncio.AbstractEventLoop, recwarn: pytest.WarningsRecorder
) -> None:
    """A server that never accepts: the TCP connect times out, nothing leaks."""
    with unaccepting_listener() as (host, port):
        connector = aiohttp.TCPConnector()
        # total only bounds the test should the connection get through
        timeout = aiohttp.ClientTimeout(total=GUARD, connect=CONNECT)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout
        ) as session:
            start = loop.time()
            with pytest.raises(aiohttp.ConnectionTimeoutError):
                await session.get(f"http://{host}:{port}/")
            elapsed = loop.time() - start
            assert CONNECT - 0.05 <= elapsed <= CONNECT + SLACK
            assert_connector_idle(connector)

    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


# 3. wait path ---------------------------------------------------------------


async def test_waiting_for_a_free_slot_times_out(
    loop: asyncio.AbstractEventLoop, server: tuple[TestServer, Backend]
) -> None:
    """With the only slot held, a queued request times out and leaves no waiter."""
    srv, backend = server
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(
        connector=connector, timeout=connect_timeout(CONNECT)
    ) as session:
        held = await session.get(srv.make_url("/hold"))  # holds the only slot
        start = loop.time()
        with pytest.raises(aiohttp.ConnectionTimeoutError):
            await asyncio.wait_for(session.get(srv.make_url("/")), GUARD)
        elapsed = loop.time() - start

        assert CONNECT - 0.05 <= elapsed <= CONNECT + SLACK
        assert not connector._waiters
        assert len(connector._acquired) == 1  # only the held connection

        backend.gate.set()
        assert await held.text() == "held"
        assert await request_port(session, srv.make_url("/"))
        assert_connector_idle(connector)


# 4. ceil_threshold ------------------------------------------------------------


@pytest.mark.parametrize(
    ("connect", "ceil_threshold", "rounded"),
    [
        (2.0, 5, False),  # below the default threshold: exact
        (5.0, 5, False),  # at the threshold: exact, rounding needs connect > it
        (6.0, 5, True),  # above the default threshold: whole second
        (2.0, 1, True),  # custom threshold rounds what the default would not
        (7.0, 10, False),  # custom threshold keeps exact what the default rounds
    ],
)
async def test_connect_deadline_honours_ceil_threshold(
    loop: asyncio.AbstractEventLoop,
    timeout_spy: TimeoutSpy,
    connect: float,
    ceil_threshold: float,
    rounded: bool,
) -> None:
    """The create path deadline is now + connect, rounded up above the threshold."""
    connector, resolver = hanging_connector()
    timeout = connect_timeout(connect, ceil_threshold=ceil_threshold)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # start at ~.3 of a loop second: rounding up then moves the deadline
        # by ~.7 s, far more than the time between `before` and `after`
        await asyncio.sleep((0.3 - loop.time() % 1) % 1)
        before = loop.time()
        task = asyncio.create_task(get(session, HANG_URL))
        await resolver.started.wait()
        after = loop.time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert_connector_idle(connector)

    [deadline] = timeout_spy.entered_by(task)
    assert timeout_spy.timers_of(task) == [deadline]
    assert deadline is not None
    if rounded:
        assert deadline == math.ceil(before + connect) == math.ceil(after + connect)
    else:
        assert before + connect <= deadline <= after + connect


# 5. traces ------------------------------------------------------------------

TRACED_SIGNALS = (
    "request_start",
    "request_headers_sent",
    "request_end",
    "request_exception",
    "connection_queued_start",
    "connection_queued_end",
    "connection_create_start",
    "connection_create_end",
    "connection_reuseconn",
    "dns_resolvehost_start",
    "dns_resolvehost_end",
    "dns_cache_hit",
    "dns_cache_miss",
)


def recording_trace_config(events: dict[str, list[str]]) -> aiohttp.TraceConfig:
    """Record signal names per request, keyed by ``trace_request_ctx["name"]``."""
    config = aiohttp.TraceConfig()
    for name in TRACED_SIGNALS:

        async def record(session: Any, ctx: Any, params: Any, name: str = name) -> None:
            events.setdefault(ctx.trace_request_ctx["name"], []).append(name)

        getattr(config, f"on_{name}").append(record)
    return config


async def test_traces_on_create_and_reuse(
    server: tuple[TestServer, Backend],
) -> None:
    """A created and then a reused connection fire traces as in 3.10.10."""
    srv, _ = server
    events: dict[str, list[str]] = {}
    async with aiohttp.ClientSession(
        timeout=connect_timeout(CONNECT), trace_configs=[recording_trace_config(events)]
    ) as session:
        for name in ("create", "reuse"):
            ctx = {"name": name}
            async with session.get(srv.make_url("/"), trace_request_ctx=ctx) as r:
                await r.read()

    assert events == {
        "create": [
            "request_start",
            "connection_create_start",
            "connection_create_end",
            "request_headers_sent",
            "request_end",
        ],
        "reuse": [
            "request_start",
            "connection_reuseconn",
            "request_headers_sent",
            "request_end",
        ],
    }


@pytest.mark.parametrize("pooled", [True, False], ids=["then-reuse", "then-create"])
async def test_traces_on_queued_request(
    server: tuple[TestServer, Backend], pooled: bool
) -> None:
    """A queued request fires queued start/end, then reuse or create traces."""
    srv, backend = server
    events: dict[str, list[str]] = {}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=connect_timeout(CONNECT * 10),
        trace_configs=[recording_trace_config(events)],
    ) as session:
        held = await session.get(
            srv.make_url("/hold"), trace_request_ctx={"name": "held"}
        )
        queued = asyncio.create_task(
            request_port(
                session, srv.make_url("/"), trace_request_ctx={"name": "queued"}
            )
        )
        await wait_for_waiter(connector)
        if pooled:
            backend.gate.set()
            await held.read()  # the connection goes back to the pool
        else:
            held.close()  # the connection is dropped: the waiter must create
        await queued

    after_wait = (
        ["connection_reuseconn"]
        if pooled
        else ["connection_create_start", "connection_create_end"]
    )
    assert events["queued"] == [
        "request_start",
        "connection_queued_start",
        "connection_queued_end",
        *after_wait,
        "request_headers_sent",
        "request_end",
    ]


async def test_traces_on_timeouts(loop: asyncio.AbstractEventLoop) -> None:
    """Timing out while creating or while queued fires the same traces as before."""
    events: dict[str, list[str]] = {}
    trace_configs = [recording_trace_config(events)]
    connector, resolver = hanging_connector(limit=1)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=connect_timeout(CONNECT),
        trace_configs=trace_configs,
    ) as session:
        create = asyncio.create_task(
            get(session, HANG_URL, trace_request_ctx={"name": "create"})
        )
        await resolver.started.wait()
        # queued behind the hanging attempt, and giving up well before it
        with pytest.raises(aiohttp.ConnectionTimeoutError):
            await session.get(
                HANG_URL,
                trace_request_ctx={"name": "queued"},
                timeout=connect_timeout(CONNECT / 3),
            )
        with pytest.raises(aiohttp.ConnectionTimeoutError):
            await create
        assert_connector_idle(connector)

    assert events == {
        "create": [
            "request_start",
            "connection_create_start",
            "dns_resolvehost_start",
            "request_exception",
        ],
        "queued": [
            "request_start",
            "connection_queued_start",
            "request_exception",
        ],
    }


# 6. the documented break ----------------------------------------------------


@pytest.mark.proves_patch
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


@pytest.mark.proves_patch
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


# 7. a woken waiter that gives up passes the slot on (aiohttp #9670) --------


@pytest.mark.proves_patch
async def test_woken_waiter_cancelled_passes_the_slot_on(
    server: tuple[TestServer, Backend],
) -> None:
    """W1 is woken and cancelled at once: W2, then the newcomer W3, get served.

    With limit=1, W1 and W2 queue behind a held connection. The connection
    goes and W1 is cancelled in the same loop iteration, as when W1's connect
    timeout fires together with the release. 3.10.10 lost that wake-up: W2
    and W3 both ended in ConnectionTimeoutError after 0.5 s with the slot free.
    """
    srv, backend = server
    connector = aiohttp.TCPConnector(limit=1)
    served: list[str] = []

    async with aiohttp.ClientSession(
        connector=connector, timeout=connect_timeout(0.5)
    ) as session:

        async def request(name: str) -> None:
            await request_port(session, srv.make_url("/"))
            served.append(name)

        held = await session.get(srv.make_url("/hold"))  # the only slot
        w1 = asyncio.create_task(request("W1"))
        w2 = asyncio.create_task(request("W2"))
        await wait_for_waiter(connector, 2)

        held.close()  # wakes W1 ...
        w1.cancel()  # ... which gives up before it runs
        w3 = asyncio.create_task(request("W3"))
        try:
            await asyncio.wait_for(asyncio.gather(w2, w3), GUARD)
        finally:
            backend.gate.set()  # let the server finish the held request

        assert w1.cancelled()
        assert served == ["W2", "W3"]  # first in, first out; W3 did not jump
        assert_connector_idle(connector)


# 8. a failing trace callback leaves nothing behind -----------------------------


class InjectedError(Exception):
    """Raised by a trace callback on purpose."""


def failing_trace_config(signal: str, failure: str) -> aiohttp.TraceConfig:
    """on_<signal> raises, or hangs until the connect timeout fires, but only
    for requests made with trace_request_ctx={"victim": True}."""

    async def callback(session: Any, ctx: Any, params: Any) -> None:
        if not (ctx.trace_request_ctx or {}).get("victim"):
            return
        if failure == "timeout":
            await asyncio.get_running_loop().create_future()
        raise InjectedError(signal)

    config = aiohttp.TraceConfig()
    getattr(config, f"on_{signal}").append(callback)
    return config


# (signal, failure, how the victim gets there)
TRACE_FAILURES = [
    ("connection_queued_start", "raise", "queued"),
    ("connection_queued_start", "timeout", "queued"),
    ("connection_queued_end", "raise", "queued"),
    ("connection_queued_end", "timeout", "queued"),
    ("connection_create_start", "raise", "creates"),
    ("connection_create_start", "timeout", "creates"),
    ("connection_create_end", "raise", "creates"),
    ("connection_create_end", "timeout", "creates"),
    ("connection_reuseconn", "raise", "reuses"),
    ("connection_reuseconn", "raise", "queued"),
    ("connection_reuseconn", "timeout", "queued"),
]


@pytest.mark.proves_patch
@pytest.mark.parametrize(("signal", "failure", "path"), TRACE_FAILURES)
async def test_failing_trace_callback_frees_the_connector(
    server: tuple[TestServer, Backend],
    recwarn: pytest.WarningsRecorder,
    signal: str,
    failure: str,
    path: str,
) -> None:
    """A trace callback that raises or times out costs its request only.

    With limit=1, the victim fails in the callback while a bystander waits
    behind it: the bystander and every later request get served, and the
    connector ends up with no placeholder, waiter or open connection left.
    3.10.10 kept the slot (or the waiter) for good, or lost the wake-up.
    """
    srv, backend = server
    connector = aiohttp.TCPConnector(limit=1)
    url = srv.make_url("/")
    victim_timeout = connect_timeout(CONNECT if failure == "timeout" else GUARD)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=connect_timeout(GUARD),
        trace_configs=[failing_trace_config(signal, failure)],
    ) as session:
        held = None
        if path == "reuses":
            await request_port(session, url)  # leaves a pooled connection
        elif path == "queued":
            # the victim (and the bystander) queue behind this one
            await request_port(session, url)
            held = await session.get(srv.make_url("/hold"))
        victim = asyncio.create_task(
            request_port(
                session, url, trace_request_ctx={"victim": True}, timeout=victim_timeout
            )
        )
        if path == "queued" and signal != "connection_queued_start":
            await wait_for_waiter(connector)
        bystander = asyncio.create_task(request_port(session, url))
        await asyncio.sleep(0)
        if held is not None:
            backend.gate.set()
            await held.read()  # back to the pool: wakes the victim
        expected = (
            aiohttp.ConnectionTimeoutError if failure == "timeout" else InjectedError
        )
        with pytest.raises(expected):
            await asyncio.wait_for(victim, GUARD)
        assert (await asyncio.wait_for(bystander, GUARD)).isdigit()
        assert_connector_idle(connector)
        later = [request_port(session, url) for _ in range(3)]
        assert all(
            p.isdigit() for p in await asyncio.wait_for(asyncio.gather(*later), GUARD)
        )
        assert_connector_idle(connector)

    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]

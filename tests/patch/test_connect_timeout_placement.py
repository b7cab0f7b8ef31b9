"""Where ClientTimeout.connect applies now that the connector applies it.

Reusing a pooled connection enters no timeout context; creating a connection
and waiting for a free slot end in ConnectionTimeoutError after about
``connect``; the deadline honours ``ceil_threshold``. The series is
described in ``connect_helpers.py``.
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
from aiohttp.test_utils import TestServer

from .connect_helpers import (
    CONNECT,
    GUARD,
    HANG_URL,
    SLACK,
    Backend,
    assert_connector_idle,
    connect_timeout,
    get,
    hanging_connector,
    request_port,
)

if sys.version_info >= (3, 11):
    from asyncio import Timeout
else:  # what aiohttp.helpers.ceil_timeout() uses before Python 3.11
    from async_timeout import Timeout


class SuperConnector(aiohttp.TCPConnector):
    """A subclass whose connect() extends the base one through super()."""

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,
    ) -> Any:
        return await super().connect(req, traces, timeout)


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


# 1. reuse path ------------------------------------------------------------


@pytest.mark.proves_patch("0001")
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

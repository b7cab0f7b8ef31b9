"""Trace callbacks once the connector applies the connect timeout.

The traces fire as in 3.10.10 when creating, reusing, queueing and timing
out, and a callback that raises or times out costs its own request only:
the slot and the waiters are freed. The series is described in
``connect_helpers.py``.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from .connect_helpers import (
    CONNECT,
    GUARD,
    HANG_URL,
    Backend,
    OpenConnections,
    assert_connector_idle,
    connect_timeout,
    get,
    hanging_connector,
    request_port,
    wait_for_waiter,
)

# 1. the traces fired ----------------------------------------------------------

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


# 2. a failing trace callback leaves nothing behind ---------------------------


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


# (signal, failure, how the victim gets there, the forward patch that fixes
# it on the forward series' release; None where that release has no bug)
TRACE_FAILURES = [
    ("connection_queued_start", "raise", "queued", None),
    ("connection_queued_start", "timeout", "queued", "0001"),
    ("connection_queued_end", "raise", "queued", "0001"),
    ("connection_queued_end", "timeout", "queued", "0001"),
    ("connection_create_start", "raise", "creates", None),
    ("connection_create_start", "timeout", "creates", None),
    ("connection_create_end", "raise", "creates", "0002"),
    ("connection_create_end", "timeout", "creates", "0002"),
    ("connection_reuseconn", "raise", "reuses", "0002"),
    ("connection_reuseconn", "raise", "queued", "0002"),
    ("connection_reuseconn", "timeout", "queued", "0002"),
]
TRACE_CASES = [
    pytest.param(
        signal,
        failure,
        path,
        id=f"{signal}-{failure}-{path}",
        marks=[pytest.mark.proves_forward(forward)] if forward else [],
    )
    for signal, failure, path, forward in TRACE_FAILURES
]


@pytest.mark.proves_patch("0003")
@pytest.mark.parametrize(("signal", "failure", "path"), TRACE_CASES)
async def test_failing_trace_callback_frees_the_connector(
    server: tuple[TestServer, Backend],
    recwarn: pytest.WarningsRecorder,
    signal: str,
    failure: str,
    path: str,
) -> None:
    """A trace callback that raises or times out costs its request only.

    With limit=1, the victim fails in the callback while a bystander waits
    behind it: the bystander and every later request get served, the
    connector ends up with no placeholder or waiter left, and no
    connection stays open once the session is closed. 3.10.10 kept the
    slot (or the waiter) for good, or lost the wake-up; releases that free
    the slot can still leave the victim's connection open for good.
    """
    srv, backend = server
    connections = OpenConnections(srv)
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

    await connections.wait_all_closed()
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]

"""Who gets a slot freed under a limit, and when.

Each freed slot wakes one queued request, and nobody else can take it
before that request runs: a second release in the same loop iteration
does not wake a second request for a host already at ``limit_per_host``,
and a newcomer for another host does not squeeze past ``limit``. A
newcomer that finds a slot free and nobody queued takes it at once, and
closing the connector ends every queued request at once.

What the tests observe is what a user sees: how many requests the server
handles at once, which request is served, which exception ends the others
and how soon. The series is described in ``connect_helpers.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from .connect_helpers import (
    CONNECT,
    GUARD,
    Backend,
    QueueWatch,
    connect_timeout,
    finish,
    request_port,
    wait_for_waiter,
)

SETTLE = 0.3  # seconds for a wrongly woken request to reach the handler


async def two_servers(aiohttp_server: Any) -> tuple[TestServer, TestServer, Backend]:
    """Two hosts (two ports, so two connection keys) on one shared Backend."""
    backend = Backend()
    return (
        await aiohttp_server(backend.app),
        await aiohttp_server(backend.app),
        backend,
    )


def limited_session(
    watch: QueueWatch,
    connect: float | None = GUARD,
    limit: int = 100,  # aiohttp's default
    limit_per_host: int = 0,
) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host),
        timeout=connect_timeout(connect),
        trace_configs=[watch.config],
    )


@pytest.mark.proves_patch("0004")
async def test_two_releases_wake_one_request_per_free_host_slot(
    aiohttp_server: Any,
) -> None:
    """limit_per_host=1: two releases in one iteration let one request in.

    W1 and W2 queue for host A behind A's only slot. A's connection and one
    to host B are released in the same loop iteration: the first release
    wakes W1; the second must not wake W2 too, since W1 has not taken A's
    slot yet. 3.10.10 woke both, and the server handled two requests for A
    at once.
    """
    srv_a, srv_b, backend = await two_servers(aiohttp_server)
    watch = QueueWatch()
    async with limited_session(watch, limit_per_host=1) as session:
        held_a = await session.get(srv_a.make_url("/hold"))
        held_b = await session.get(srv_b.make_url("/hold"))
        waiters = [
            asyncio.create_task(request_port(session, srv_a.make_url("/busy")))
            for _ in range(2)
        ]
        try:
            await watch.wait_queued(2)
            held_a.close()  # wakes W1 ...
            held_b.close()  # ... and, in the same iteration, frees another slot
            await backend.wait_busy(1)
            await asyncio.sleep(SETTLE)  # time for a second request to get in
            assert backend.max_busy == 1
            backend.gate.set()
            await asyncio.wait_for(asyncio.gather(*waiters), GUARD)  # both served
        finally:
            backend.gate.set()
            await finish(*waiters)
    assert backend.max_busy == 1


@pytest.mark.proves_patch("0004")
async def test_a_newcomer_does_not_take_the_slot_of_a_woken_request(
    aiohttp_server: Any,
) -> None:
    """limit=1: a release wakes host A's request, so host B's newcomer waits.

    The newcomer for host B starts in the loop iteration that releases the
    only slot and wakes the request queued for host A, and runs before it.
    3.10.10 let both connect: two requests in the server at once.
    """
    srv_a, srv_b, backend = await two_servers(aiohttp_server)
    watch = QueueWatch()
    async with limited_session(watch, limit=1) as session:
        held = await session.get(srv_a.make_url("/hold"))
        woken = asyncio.create_task(request_port(session, srv_a.make_url("/busy")))
        tasks = [woken]
        try:
            await watch.wait_queued(1)
            newcomer = asyncio.create_task(
                request_port(session, srv_b.make_url("/busy"))
            )
            tasks.append(newcomer)
            held.close()  # wakes the queued request; the newcomer runs first
            await backend.wait_busy(1)
            await asyncio.sleep(SETTLE)
            assert backend.max_busy == 1
            backend.gate.set()
            await asyncio.wait_for(asyncio.gather(*tasks), GUARD)  # both served
        finally:
            backend.gate.set()
            await finish(*tasks)
    assert backend.max_busy == 1


@pytest.mark.proves_patch("0005")
async def test_a_newcomer_takes_a_free_slot_when_nobody_is_queued(
    aiohttp_server: Any,
) -> None:
    """limit=2: a slot freed with nobody left to wake goes to a newcomer.

    Both slots are held and W is queued. Both connections go in the same
    loop iteration: the first wakes W, the second finds nobody to wake. A
    newcomer N, started just before, must take the second slot while W is
    still in the handler. 3.10.10 queued N behind W's spent entry, where no
    release came to wake it: N ended in ConnectionTimeoutError after its
    connect timeout, with a slot free all along.
    """
    srv, _, backend = await two_servers(aiohttp_server)
    watch = QueueWatch()
    async with limited_session(watch, limit=2) as session:
        held = [await session.get(srv.make_url("/hold")) for _ in range(2)]
        w = asyncio.create_task(request_port(session, srv.make_url("/busy")))
        tasks = [w]
        try:
            await watch.wait_queued(1)
            newcomer = asyncio.create_task(
                request_port(
                    session, srv.make_url("/busy"), timeout=connect_timeout(CONNECT)
                )
            )
            tasks.append(newcomer)
            for resp in held:
                resp.close()  # both slots free in one iteration
            await backend.wait_busy(2)  # W and N in the handler at once
            backend.gate.set()
            await asyncio.wait_for(asyncio.gather(*tasks), GUARD)
        finally:
            backend.gate.set()
            await finish(*tasks)
    assert backend.max_busy == 2


@pytest.mark.proves_forward("0003")
async def test_a_request_asking_again_queues_behind_a_woken_one(
    server: tuple[TestServer, Backend],
) -> None:
    """limit=1: a task that asks again just after its response ended waits
    behind the request its release woke.

    The held response ends, its connection goes back to the pool and wakes
    the queued request W; the task that read it asks for a connection
    again before W has run. First in, first out: W is served first. 3.10.10
    keeps that order; 3.10.11 and later hand the pooled connection to the
    task asking again, and W waits for the next release.
    """
    srv, backend = server
    # No trace callbacks here: awaiting them would let W run first.
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(
        connector=connector, timeout=connect_timeout(GUARD)
    ) as session:
        held = await session.get(srv.make_url("/hold"))
        w = asyncio.create_task(
            request_port(session, srv.make_url("/").with_query(who="W"))
        )
        try:
            await wait_for_waiter(connector)
            backend.gate.set()  # the held response ends ...
            await held.read()  # ... and its connection goes back to the pool
            # in this very task (bounded by its timeout, not by wait_for(),
            # which would run it in a task of its own, after W)
            await request_port(
                session,
                srv.make_url("/").with_query(who="again"),
                timeout=aiohttp.ClientTimeout(total=GUARD),
            )
            await asyncio.wait_for(w, GUARD)
        finally:
            await finish(w)
    assert backend.arrivals == ["W", "again"]


async def close_with_a_request_queued(
    srv: TestServer, backend: Backend
) -> tuple[asyncio.Task[str], float]:
    """Close the connector while a request waits for its only slot, with no
    connect timeout; return the request and how long it took to end."""
    watch = QueueWatch()
    session = limited_session(watch, connect=None, limit=1)
    held = await session.get(srv.make_url("/hold"))
    queued = asyncio.create_task(request_port(session, srv.make_url("/")))
    try:
        await watch.wait_queued(1)
        start = time.monotonic()
        assert session.connector is not None
        await session.connector.close()
        await asyncio.wait({queued}, timeout=GUARD)
        took = time.monotonic() - start
        held.close()
    finally:
        backend.gate.set()
        await session.close()
        if not queued.done():
            await finish(queued)
            raise AssertionError(f"the queued request still waited after {GUARD} s")
    return queued, took


@pytest.mark.proves_patch("0006")
async def test_closing_the_connector_ends_queued_requests_at_once(
    server: tuple[TestServer, Backend],
) -> None:
    """A request queued for a slot ends as soon as the connector closes.

    3.10.10 left it waiting for a slot that would never come (here, with no
    connect timeout, for ever).
    """
    _, took = await close_with_a_request_queued(*server)
    assert took < 1


@pytest.mark.proves_patch("0006")
@pytest.mark.proves_forward("0004")
async def test_closing_the_connector_fails_queued_requests_with_a_client_error(
    server: tuple[TestServer, Backend],
) -> None:
    """The queued request raises ClientConnectionError ("Connector is closed"),
    as one that was connecting when the connector closed does, and not
    CancelledError: its task was not cancelled, and a CancelledError would
    tell the caller (a TaskGroup, say) that it had been."""
    queued, _ = await close_with_a_request_queued(*server)
    assert not queued.cancelled(), "the request raised CancelledError"
    error = queued.exception()
    assert isinstance(error, aiohttp.ClientConnectionError)
    assert not isinstance(error, asyncio.TimeoutError)

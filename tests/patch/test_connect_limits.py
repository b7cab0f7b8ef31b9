"""Connection slots under a limit once the connector applies the timeout.

A waiter woken for a free slot and cancelled before it runs passes the slot
on (aiohttp #9670). The series is described in ``connect_helpers.py``; the
limit under load is in ``test_connect_load.py``.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from .connect_helpers import (
    GUARD,
    Backend,
    assert_connector_idle,
    connect_timeout,
    request_port,
    wait_for_waiter,
)


@pytest.mark.proves_patch("0002")
@pytest.mark.parametrize(
    "newcomer",
    [
        pytest.param(False, id="alone", marks=pytest.mark.proves_forward("0001")),
        pytest.param(
            True, id="with-newcomer", marks=pytest.mark.proves_forward("0001", "0003")
        ),
    ],
)
async def test_woken_waiter_cancelled_passes_the_slot_on(
    server: tuple[TestServer, Backend], newcomer: bool
) -> None:
    """W1 is woken and cancelled at once: W2 (then a newcomer W3) get served.

    With limit=1, W1 and W2 queue behind a held connection. The connection
    goes and W1 is cancelled in the same loop iteration, as when W1's connect
    timeout fires together with the release. 3.10.10 lost that wake-up: W2
    (and W3) ended in ConnectionTimeoutError after 0.5 s with the slot free.
    A newcomer W3 arriving then must queue behind W2: first in, first out.
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
        tasks = [w2]
        if newcomer:
            tasks.append(asyncio.create_task(request("W3")))
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), GUARD)
        finally:
            backend.gate.set()  # let the server finish the held request

        assert w1.cancelled()
        assert served == ["W2", "W3"][: len(tasks)]  # W3 did not jump the queue
        assert_connector_idle(connector)

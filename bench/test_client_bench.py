"""CodSpeed benchmarks of the client request path (aiohttp as installed).

`pytest bench/` runs each once as a quick test; `pytest --codspeed bench/`
measures them. The names are what tools/bench.py reports on.
"""

from __future__ import annotations

from typing import Callable

from aiohttp import ClientTimeout
from aiohttp.client import DEFAULT_TIMEOUT

from .conftest import REQUESTS, Batch

MakeBatch = Callable[..., Batch]


def default_with_connect(connect: float) -> ClientTimeout:
    """The session default (total=300, sock_connect=30) plus `connect`.

    A bare ClientTimeout(connect=10) would also drop total=300 and with it
    the per-request total timer, so b/c would not differ from a) only in
    `connect`, and "b vs a" would measure two changes at once.
    """
    d = DEFAULT_TIMEOUT
    return ClientTimeout(
        total=d.total,
        connect=connect,
        sock_read=d.sock_read,
        sock_connect=d.sock_connect,
        ceil_threshold=d.ceil_threshold,
    )


def test_keepalive_default_timeout(benchmark, make_batch: MakeBatch) -> None:
    """a) 100 sequential GETs over one keep-alive connection, default timeout."""
    assert benchmark(make_batch()) == REQUESTS


def test_keepalive_connect_10(benchmark, make_batch: MakeBatch) -> None:
    """b) connect=10 is above ceil_threshold (5): pristine arms a real timer."""
    assert benchmark(make_batch(timeout=default_with_connect(10))) == REQUESTS


def test_keepalive_connect_1(benchmark, make_batch: MakeBatch) -> None:
    """c) connect=1 is below ceil_threshold: the timer is not rounded up."""
    assert benchmark(make_batch(timeout=default_with_connect(1))) == REQUESTS


def test_concurrent_limit_10(benchmark, make_batch: MakeBatch) -> None:
    """d) 20 concurrent workers through limit=10: the wait branch runs."""
    assert benchmark(make_batch(concurrency=20, limit=10)) == REQUESTS


def test_new_connection_per_request(benchmark, make_batch: MakeBatch) -> None:
    """e) force_close: every request creates a connection (create branch)."""
    assert benchmark(make_batch(force_close=True)) == REQUESTS

"""Keep-alive load reproduction: a server and a client, each its own process.

    python bench/load.py serve --port-file F [--lifetime S] [--cpu N]
    python bench/load.py client --url U --out F [--requests N] [--concurrency C]
                                [--cpu N] [--instructions]

Driven by `python -m tools.bench load`, which runs the client once under each
interpreter against one server. Both sides use uvloop and only ever bind to
or connect to 127.0.0.1. Only aiohttp and uvloop are imported (and, with
--instructions, pytest-codspeed's instrument hooks), so the script runs under
any tree's interpreter.

--cpu pins the process to that CPU. --instructions is for a client run under
`valgrind --tool=callgrind --instr-atstart=no` with CODSPEED_ENV set: the
client switches instrumentation on around the measured requests only (not
start-up, not the warm-up) and dumps that part as `bench/load.py::client`,
the way pytest-codspeed dumps a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvloop
from aiohttp import ClientSession, TCPConnector, __version__, web

BODY = b"x" * 2000
HOST = "127.0.0.1"


async def _hello(request: web.Request) -> web.Response:
    return web.Response(body=BODY)


async def serve(port_file: Path, lifetime: float) -> None:
    app = web.Application()
    app.router.add_get("/", _hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    await web.SockSite(runner, sock, backlog=1024).start()
    # Written only once listening, so the driver can connect right away.
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    tmp.rename(port_file)
    try:
        # Bounded even if the driver dies without killing us.
        await asyncio.sleep(lifetime)
    finally:
        await runner.cleanup()


INSTRUMENTED_URI = "bench/load.py::client"


async def counted(run: Callable[[], Awaitable[float]]) -> float:
    """run() with callgrind's instrumentation on around it only, dumped as one
    part named INSTRUMENTED_URI (as pytest-codspeed does per benchmark)."""
    from pytest_codspeed.instruments.hooks import InstrumentHooks

    hooks = InstrumentHooks()
    hooks.disable_callgrind_markers()
    hooks.start_benchmark()
    hooks.callgrind_start_instrumentation()
    try:
        return await run()
    finally:
        hooks.callgrind_stop_instrumentation()
        hooks.stop_benchmark()
        hooks.set_executed_benchmark(INSTRUMENTED_URI)


async def client(
    url: str,
    requests: int,
    concurrency: int,
    warmup: int,
    label: str,
    instructions: bool = False,
) -> dict[str, object]:
    if not url.startswith(f"http://{HOST}:"):
        raise SystemExit(f"refusing to load anything but {HOST}: {url}")
    latencies = [0.0] * requests
    async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:

        async def worker(indices: Iterator[int], record: bool) -> None:
            for i in indices:
                start = time.perf_counter()
                async with session.get(url) as resp:
                    body = await resp.read()
                if resp.status != 200 or len(body) != len(BODY):
                    raise RuntimeError(f"bad response {resp.status}, {len(body)} B")
                if record:
                    latencies[i] = time.perf_counter() - start
                    if (i + 1) % (requests // 5 or 1) == 0:
                        print(
                            f"load: {label}: request {i + 1}/{requests}",
                            file=sys.stderr,
                            flush=True,
                        )

        async def batch(n: int, record: bool) -> float:
            indices = iter(range(n))  # shared: workers take the next index
            start = time.perf_counter()
            await asyncio.gather(*(worker(indices, record) for _ in range(concurrency)))
            return time.perf_counter() - start

        await batch(warmup, record=False)
        if instructions:
            total = await counted(lambda: batch(requests, record=True))
        else:
            total = await batch(requests, record=True)
    return {
        "label": label,
        "aiohttp": __version__,
        "python": sys.version.split()[0],
        "requests": requests,
        "concurrency": concurrency,
        "warmup": warmup,
        "total_s": total,
        "instructions": instructions,
        "cpu": sorted(os.sched_getaffinity(0)),
        "latencies_s": latencies,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file", type=Path, required=True)
    s.add_argument("--lifetime", type=float, default=1800.0)
    s.add_argument("--cpu", type=int, help="pin the server to this CPU")
    c = sub.add_parser("client")
    c.add_argument("--url", required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--requests", type=int, default=10_000)
    c.add_argument("--concurrency", type=int, default=20)
    c.add_argument("--warmup", type=int, default=1_000)
    c.add_argument("--label", default="client")
    c.add_argument("--timeout", type=float, default=600.0)
    c.add_argument("--cpu", type=int, help="pin the client to this CPU")
    c.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions around the measured requests (under callgrind)",
    )
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        if args.command == "serve":
            loop.run_until_complete(serve(args.port_file, args.lifetime))
            return 0
        run = client(
            args.url,
            args.requests,
            args.concurrency,
            args.warmup,
            args.label,
            args.instructions,
        )
        result = loop.run_until_complete(asyncio.wait_for(run, args.timeout))
        args.out.write_text(json.dumps(result))
        return 0
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())

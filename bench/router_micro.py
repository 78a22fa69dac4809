"""The router's Python cost per proxied request, without sockets: its protocol objects on fake transports.

Drives `ClientProtocol` and `UpstreamConnection` (or `bench/minimal_proxy.py`'s classes, `--proxy minimal`)
with the bytes wrk sends and uvicorn answers, one request at a time on a keep-alive connection, so what is
measured is the Python work per request and nothing of the kernel or the event loop. Deterministic enough
for A/B decisions under callgrind (`--callgrind` runs itself twice under valgrind and prints instructions
per request from the difference, which cancels start-up):

    .venv/bin/python bench/router_micro.py [--proxy router|minimal] [--requests 200000] [--callgrind]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: Thu, 26 Nov 2026 20:00:00 GMT\r\nserver: uvicorn\r\n"
    b"content-type: text/plain\r\ncontent-length: 23\r\n\r\nhello from the backend\n"
)


class Sink:
    """A transport whose `write` is a C-level list append, so the harness adds no Python frame per write."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.write = self.out.append

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def router_driver(loop: asyncio.AbstractEventLoop) -> Any:
    """A function proxying `n` requests through the router (one route, two healthy pooled targets)."""
    from sprout.router.config import RouterConfig
    from sprout.router.proxy import ClientProtocol
    from sprout.router.router import Router
    from sprout.router.table import parse_table
    from sprout.router.upstream import UpstreamConnection

    router = Router(RouterConfig(), loop, None, None)
    targets = [{"id": f"b{i}", "address": f"127.0.0.1:{9000 + i}", "healthy": True} for i in range(2)]
    route = {"name": "bench", "hosts": ["bench.localhost"], "default": True, "max_body": 2 << 30}
    router.apply_table(
        parse_table({"routes": [{**route, "groups": [{"name": "g", "targets": targets}]}]}), False
    )
    for target in router.targets.values():
        pool = target.pool
        assert pool is not None
        for _ in range(2):
            conn = UpstreamConnection(pool)
            conn.connection_made(Sink())  # type: ignore[arg-type]
            pool.release(conn)
    client = ClientProtocol(router)
    sink = Sink()
    client.connection_made(sink)  # type: ignore[arg-type]

    def run(n: int) -> None:
        feed = client.data_received
        out = sink.out
        for _ in range(n):
            feed(REQUEST)
            ex = client.exchange
            assert ex is not None and ex.conn is not None
            ex.conn.data_received(RESPONSE)
            out.clear()

    return run, router


def minimal_driver(loop: asyncio.AbstractEventLoop) -> Any:
    """The same for bench/minimal_proxy.py (two backends, one pooled connection each): the floor."""
    sys.path.insert(0, str(Path(__file__).parent))
    import minimal_proxy

    pools: list[list[Any]] = [[], []]
    ups = []
    for pool in pools:
        up = minimal_proxy.Upstream(pool)
        up.transport = Sink()  # type: ignore[assignment]
        pool.append(up)
        ups.append(up)
    client = minimal_proxy.Client([("127.0.0.1", 9000), ("127.0.0.1", 9001)], pools)
    sink = Sink()
    client.transport = sink  # type: ignore[assignment]
    up0, up1 = ups

    def run(n: int) -> None:
        feed = client.data_received
        out = sink.out
        for _ in range(n):
            feed(REQUEST)
            (up0 if up0.client is not None else up1).data_received(RESPONSE)
            out.clear()

    return run, None


def measure(proxy: str, n: int) -> float:
    """Seconds per request over `n` requests after a warm-up."""
    loop = uvloop.new_event_loop()
    run, router = (router_driver if proxy == "router" else minimal_driver)(loop)
    run(1000)
    start = time.perf_counter()
    run(n)
    seconds = (time.perf_counter() - start) / n
    if router is not None:
        loop.run_until_complete(router.close())
    loop.close()
    return seconds


def callgrind(proxy: str, small: int, large: int) -> float:
    """Instructions per request: two callgrind runs, `large` and `small` requests, difference / (large - small)."""
    totals = []
    with tempfile.TemporaryDirectory() as folder:
        for n in (small, large):
            out = Path(folder) / f"cg.{n}"
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                   "--proxy", proxy, "--requests", str(n), "--quiet"]  # fmt: skip
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            match = re.search(r"^summary: (\d+)", out.read_text(), re.M)
            assert match, "no summary line in the callgrind output"
            totals.append(int(match.group(1)))
    return (totals[1] - totals[0]) / (large - small)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--proxy", choices=("router", "minimal"), default="router")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--callgrind", action="store_true", help="instructions per request under callgrind")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind:
        per = callgrind(args.proxy, 2000, 2000 + args.requests)
        print(f"{args.proxy}: {per:,.0f} instructions/request (callgrind, {args.requests} requests)")
        return
    seconds = measure(args.proxy, args.requests)
    if not args.quiet:
        print(f"{args.proxy}: {seconds * 1e6:.2f} us/request ({args.requests} requests, no sockets)")


if __name__ == "__main__":
    main()

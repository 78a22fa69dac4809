"""A floor for a Python proxy, for `bench/router.py --only …,minimal`: uvloop + httptools and nothing else.

Keep-alive both ways and a connection pool per backend, random choice between backends; request and
response bytes are forwarded as they arrive, parsed only to find where a message ends. No header
policing or rewriting, no health checks, retries, draining, metrics, access log or limits: what the
bench measures here is what any Python proxy costs before it does the work `sprout router` does.
Not part of Sprout.

    python bench/minimal_proxy.py PORT BACKEND_PORT[,BACKEND_PORT…]
"""

from __future__ import annotations

import asyncio
import random
import socket
import sys

import httptools
import uvloop


class Upstream(asyncio.Protocol):
    """A pooled connection to one backend; relays one response at a time to its client."""

    def __init__(self, pool: list[Upstream]) -> None:
        self.pool = pool
        self.client: Client | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.client is not None and self.client.transport is not None
        self.client.transport.write(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.client = None
        self.pool.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()


class Client(asyncio.Protocol):
    """One client connection: each complete request goes to a pooled upstream connection."""

    def __init__(self, backends: list[tuple[str, int]], pools: list[list[Upstream]]) -> None:
        self.backends = backends
        self.pools = pools
        self.parser = httptools.HttpRequestParser(self)
        self.pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.pending.append(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_complete(self) -> None:
        data = b"".join(self.pending)
        self.pending = []
        index = random.randrange(len(self.backends))
        pool = self.pools[index]
        if pool:
            upstream = pool.pop()
            upstream.client = self
            assert upstream.transport is not None
            upstream.transport.write(data)
        else:
            asyncio.get_running_loop().create_task(self._connect(index, data))

    async def _connect(self, index: int, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(lambda: Upstream(self.pools[index]), *self.backends[index])
        upstream.client = self
        assert upstream.transport is not None
        upstream.transport.write(data)


async def serve(port: int, backends: list[tuple[str, int]]) -> None:
    """Proxy 127.0.0.1:`port` to `backends` until killed."""
    pools: list[list[Upstream]] = [[] for _ in backends]
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    await loop.create_server(lambda: Client(backends, pools), sock=sock)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), [("127.0.0.1", int(p)) for p in sys.argv[2].split(",")]))

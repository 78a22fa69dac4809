"""The client's response head as built from an upstream head: exact bytes, in-process with fake sockets.

Covers the common head (one Content-Length, nothing hop-by-hop) and every case that must leave it:
hop-by-hop and Connection-named headers, chunked, HEAD, 204/304, 1xx before the answer, upstream
`Connection: close`, an HTTP/1.0 client.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from sprout.router.config import RouterConfig
from sprout.router.proxy import ClientProtocol
from sprout.router.router import Router
from sprout.router.table import parse_table
from sprout.router.upstream import UpstreamConnection

RID = b"rid-1"


class FakeTransport:
    """Collects written bytes; stands in for a socket transport."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def one_target_router() -> tuple[Router, UpstreamConnection, FakeTransport]:
    """A router (in the running loop) for a.localhost whose one target has a pooled fake connection."""
    router = Router(RouterConfig(), asyncio.get_running_loop(), None, None)
    route = {"name": "a", "hosts": ["a.localhost"], "groups": [{"name": "g", "targets": [TARGET]}]}
    router.apply_table(parse_table({"routes": [route]}), persist=False)
    pool = router.targets["t"].pool
    assert pool is not None
    conn = UpstreamConnection(pool)
    upstream = FakeTransport()
    conn.connection_made(upstream)  # type: ignore[arg-type]
    pool.release(conn)
    return router, conn, upstream


TARGET = {"id": "t", "address": "127.0.0.1:9", "healthy": True}


def exchange(request: bytes, chunks: list[bytes]) -> tuple[bytes, bool]:
    """Send `request` through a router whose only target answers with `chunks`; (client bytes, conn pooled)."""

    async def run() -> tuple[bytes, bool]:
        router, conn, _ = one_target_router()
        client = ClientProtocol(router)
        transport = FakeTransport()
        client.connection_made(transport)  # type: ignore[arg-type]
        client.data_received(request)
        for chunk in chunks:
            conn.data_received(chunk)
        pooled = conn in conn.pool.idle
        await router.close()
        return b"".join(transport.out), pooled

    return asyncio.run(run())


def head_and_body(data: bytes) -> tuple[bytes, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head + b"\r\n", body


GET = b"GET / HTTP/1.1\r\nHost: a.localhost\r\nX-Request-Id: rid-1\r\n\r\n"
HEAD = b"HEAD / HTTP/1.1\r\nHost: a.localhost\r\nX-Request-Id: rid-1\r\n\r\n"


def test_common_head_is_forwarded_with_router_framing() -> None:
    data, pooled = exchange(
        GET,
        [
            b"HTTP/1.1 200 OK\r\ndate: x\r\nServer: up\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
        ],
    )
    assert data == (
        b"HTTP/1.1 200 OK\r\ndate: x\r\nServer: up\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n"
        b"X-Request-Id: rid-1\r\n\r\nhello"
    )
    assert pooled


def test_head_split_across_reads_and_custom_reason() -> None:
    data, pooled = exchange(GET, [b"HTTP/1.1 201 Made\r\nA: 1\r\nCont", b"ent-Length: 2\r\n\r\nok"])
    assert data == b"HTTP/1.1 201 Created\r\nA: 1\r\nContent-Length: 2\r\nX-Request-Id: rid-1\r\n\r\nok"
    assert pooled


def test_body_split_across_reads_is_held_until_complete() -> None:
    data, pooled = exchange(
        GET, [b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nContent-Length: 6\r\n\r\nab", b"cd", b"ef"]
    )
    assert data == (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nContent-Length: 6\r\nX-Request-Id: rid-1\r\n\r\nabcdef"
    )
    assert pooled


def test_large_response_is_streamed_as_it_arrives() -> None:
    async def run() -> tuple[int, list[bytes], bool]:
        router, conn, _ = one_target_router()
        client = ClientProtocol(router)
        transport = FakeTransport()
        client.connection_made(transport)  # type: ignore[arg-type]
        client.data_received(GET)
        size = 100_000
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * 1000)
        first = len(transport.out)
        conn.data_received(b"y" * (size - 1000))
        pooled = conn in conn.pool.idle
        await router.close()
        return first, transport.out, pooled

    first, out, pooled = asyncio.run(run())
    assert first == 1, "the head and the first piece are sent before the response is complete"
    assert b"".join(out) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nX-Request-Id: rid-1\r\n\r\n"
        + b"x" * 1000
        + b"y" * 99_000
    )
    assert pooled


def test_hop_by_hop_and_connection_named_headers_are_dropped() -> None:
    data, _ = exchange(
        GET,
        [
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nx-private: 1\r\nKeep-Alive: timeout=5\r\n"
            b"Proxy-Connection: keep-alive\r\nTrailer: X-Sum\r\nX-Request-Id: upstream\r\nX-Cache: HIT\r\n"
            b"X-Forwarded-Proto: https\r\nSet-Cookie: s=1\r\nVary: Accept-Encoding\r\nX-Kept: yes\r\n"
            b"CONTENT-LENGTH: 2\r\n\r\nok"
        ],
    )
    head, body = head_and_body(data)
    assert head == (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nVary: Accept-Encoding\r\nX-Kept: yes\r\nContent-Length: 2\r\n"
        b"X-Request-Id: rid-1\r\n"
    )
    assert body == b"ok"


def test_chunked_response_is_rechunked() -> None:
    data, pooled = exchange(
        GET, [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n"]
    )
    head, body = head_and_body(data)
    assert head == b"HTTP/1.1 200 OK\r\nA: 1\r\nTransfer-Encoding: chunked\r\nX-Request-Id: rid-1\r\n"
    assert body == b"3\r\nabc\r\n0\r\n\r\n"
    assert pooled


def test_head_request_keeps_length_without_body() -> None:
    data, pooled = exchange(HEAD, [b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"])
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nX-Request-Id: rid-1\r\n\r\n"
    assert pooled


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nA: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nA: 1\r\n",
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nETag: x\r\nContent-Length: 7\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nETag: x\r\nContent-Length: 7\r\n",
        ),
    ],
)
def test_no_body_statuses(upstream: bytes, expected: bytes) -> None:
    data, pooled = exchange(GET, [upstream])
    assert data == expected + b"X-Request-Id: rid-1\r\n\r\n"
    assert pooled


def test_informational_response_before_the_answer_is_not_forwarded() -> None:
    data, pooled = exchange(
        GET,
        [b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    )
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: rid-1\r\n\r\nok"
    assert pooled


def test_upstream_connection_close_is_not_forwarded_and_not_pooled() -> None:
    data, pooled = exchange(GET, [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"])
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: rid-1\r\n\r\nok"
    assert not pooled


def test_http10_client_gets_keep_alive_or_close() -> None:
    keep = b"GET / HTTP/1.0\r\nHost: a.localhost\r\nConnection: keep-alive\r\nX-Request-Id: rid-1\r\n\r\n"
    data, _ = exchange(keep, [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    assert (
        data
        == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: rid-1\r\nConnection: keep-alive\r\n\r\nok"
    )
    close = b"GET / HTTP/1.0\r\nHost: a.localhost\r\nX-Request-Id: rid-1\r\n\r\n"
    data, _ = exchange(close, [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"])
    assert data == b"HTTP/1.1 200 OK\r\nX-Request-Id: rid-1\r\nConnection: close\r\n\r\nok"


def test_request_head_sent_upstream_drops_connection_named_headers() -> None:
    async def run() -> bytes:
        router, _, upstream = one_target_router()
        client = ClientProtocol(router)
        client.connection_made(FakeTransport())  # type: ignore[arg-type]
        client.data_received(
            b"GET /p?q=1 HTTP/1.1\r\nHost: a.localhost\r\nConnection: keep-alive, X-Private\r\nX-PRIVATE: 1\r\n"
            b"Accept: */*\r\nTE: trailers\r\nX-Request-Id: rid-1\r\n\r\n"
        )
        await router.close()
        return b"".join(upstream.out)

    sent = asyncio.run(run())
    assert sent == (
        b"GET /p?q=1 HTTP/1.1\r\nHost: a.localhost\r\nAccept: */*\r\nX-Forwarded-For: 127.0.0.1\r\n"
        b"X-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.localhost\r\n"
        b"X-Request-Id: rid-1\r\n\r\n"
    )
    assert not re.search(rb"(?i)x-private|\r\nte:|connection:", sent)


def request_head_sent(request: bytes) -> bytes:
    """What the target receives for one `request` (the router answers nothing yet)."""

    async def run() -> bytes:
        router, _, upstream = one_target_router()
        client = ClientProtocol(router)
        client.connection_made(FakeTransport())  # type: ignore[arg-type]
        client.data_received(request)
        await router.close()
        return b"".join(upstream.out)

    return asyncio.run(run())


def test_common_request_head_sent_upstream() -> None:
    sent = request_head_sent(
        b"GET /p?q=1 HTTP/1.1\r\nHost: a.localhost\r\nAccept-Encoding: gzip\r\nCache-Control: max-age=0\r\n"
        b"X-Forwarded-Proto: https\r\nKeep-Alive: 5\r\n\r\n"
    )
    assert re.fullmatch(
        rb"GET /p\?q=1 HTTP/1.1\r\nHost: a.localhost\r\nAccept-Encoding: gzip\r\nCache-Control: max-age=0\r\n"
        rb"X-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
        rb"X-Forwarded-Host: a.localhost\r\nX-Request-Id: [0-9a-f]{8}-[0-9a-f]+\r\n\r\n",
        sent,
    ), sent


def test_request_head_with_forwarding_and_body_sent_upstream() -> None:
    # The client is no trusted proxy (none is configured): its X-Forwarded-For is replaced, not extended.
    sent = request_head_sent(
        b"POST /f HTTP/1.1\r\nHost: a.localhost\r\nX-Forwarded-For: 10.0.0.1\r\nX-Request-Id: rid-1\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    assert sent == (
        b"POST /f HTTP/1.1\r\nHost: a.localhost\r\nX-Forwarded-For: 127.0.0.1\r\n"
        b"X-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.localhost\r\n"
        b"X-Request-Id: rid-1\r\nContent-Length: 2\r\n\r\nok"
    )

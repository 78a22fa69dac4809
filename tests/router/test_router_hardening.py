"""The smuggling/limits corpus and the header policy (table-driven), and a property test on the parser path.

The header-policy table (issue 19, acceptance 4) pins the exact bytes the backend receives, from a
client and from a configured trusted proxy.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_backend import RawBackend

from conftest import Backend, Router, group, route, spawn_backend, spawn_router, table, wait_for

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h.localhost\r\n\r\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Router, Backend]]:
    folder: Path = tmp_path_factory.mktemp("hardening")
    backend = spawn_backend(folder)
    router = spawn_router(folder, "--header-timeout", "1")
    try:
        router.admin.put_table(table(route("h", [group("g", [backend], healthy=True)], max_body=1000)))
        yield router, backend
    finally:
        router.kill()
        backend.kill()


def exchange(router: Router, data: bytes, trickle: float = 0.0, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send raw bytes; return everything received and whether the router closed the connection."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=timeout) as sock:
        if trickle:
            for i in range(len(data)):
                try:
                    sock.sendall(data[i : i + 1])
                except OSError:
                    break
                time.sleep(trickle)
        else:
            sock.sendall(data)
        received = b""
        closed = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    return received, closed


def head(host: bytes = b"h.localhost") -> bytes:
    return b"Host: " + host + b"\r\n"


CORPUS = [
    ("cl-and-te", b"POST /a HTTP/1.1\r\n" + head() + b"Content-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("te-and-cl", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("duplicate-cl-differing", b"POST /a HTTP/1.1\r\n" + head() + b"Content-Length: 5\r\nContent-Length: 53\r\n\r\nhello" + SMUGGLED, 400),
    ("duplicate-cl-list", b"POST /a HTTP/1.1\r\n" + head() + b"Content-Length: 5, 53\r\n\r\nhello" + SMUGGLED, 400),
    ("te-xchunked", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 501),
    ("te-gzip-chunked", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 501),
    ("te-chunked-identity", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("te-space-before-colon", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("te-vertical-tab", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("te-leading-space-line", b"POST /a HTTP/1.1\r\n" + head() + b" Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("te-twice", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("bare-lf-chunk-lines", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n" + SMUGGLED, 400),
    ("invalid-chunk-size", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("chunk-size-overflow", b"POST /a HTTP/1.1\r\n" + head() + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nx\r\n" + SMUGGLED, 400),
    ("obs-fold", b"GET /a HTTP/1.1\r\n" + head() + b"X-Folded: a\r\n b\r\n\r\n" + SMUGGLED, 400),
    ("bare-lf-request-line", b"GET /a HTTP/1.1\n" + head() + b"\r\n" + SMUGGLED, 400),
    ("negative-cl", b"POST /a HTTP/1.1\r\n" + head() + b"Content-Length: -1\r\n\r\n" + SMUGGLED, 400),
    ("plus-cl", b"POST /a HTTP/1.1\r\n" + head() + b"Content-Length: +5\r\n\r\nhello" + SMUGGLED, 400),
    ("two-hosts", b"GET /a HTTP/1.1\r\n" + head() + head() + b"\r\n" + SMUGGLED, 400),
    ("no-host-http11", b"GET /a HTTP/1.1\r\n\r\n" + SMUGGLED, 400),
    ("nul-in-header", b"GET /a HTTP/1.1\r\n" + head() + b"X-A: a\x00b\r\n\r\n" + SMUGGLED, 400),
    ("host-userinfo", b"GET /a HTTP/1.1\r\n" + head(b"u@h.localhost") + b"\r\n" + SMUGGLED, 400),
    ("host-port-not-digits", b"GET /a HTTP/1.1\r\n" + head(b"h.localhost:abc") + b"\r\n" + SMUGGLED, 400),
    ("absolute-form-not-http", b"GET ftp://h.localhost/a HTTP/1.1\r\n" + head() + b"\r\n" + SMUGGLED, 400),
    ("connect-method", b"CONNECT h.localhost:443 HTTP/1.1\r\n" + head() + b"\r\n" + SMUGGLED, 405),
    ("http-2.0", b"GET /a HTTP/2.0\r\n" + head() + b"\r\n" + SMUGGLED, 505),
    ("http-2.0-keep-alive", b"GET /a HTTP/2.0\r\n" + head() + b"Connection: keep-alive\r\n\r\n" + SMUGGLED, 505),
    ("http-0.9", b"GET /a\r\n\r\n" + SMUGGLED, 505),
    ("http-1.0-chunked", b"POST /a HTTP/1.0\r\n" + head() + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    ("oversize-header", b"GET /a HTTP/1.1\r\n" + head() + b"X-Big: " + b"a" * 17000 + b"\r\n\r\n", 431),
    ("many-headers", b"GET /a HTTP/1.1\r\n" + head() + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(400)) + b"\r\n", 431),
    ("oversize-uri", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + head() + b"\r\n", 414),
    ("oversize-body-cl", b"POST /echo HTTP/1.1\r\n" + head() + b"Content-Length: 2000\r\n\r\n" + b"a" * 2000, 413),
    ("oversize-body-chunked", b"POST /echo HTTP/1.1\r\n" + head() + b"Transfer-Encoding: chunked\r\n\r\n" + b"200\r\n" + b"a" * 512 + b"\r\n" + b"200\r\n" + b"a" * 512 + b"\r\n" + b"200\r\n" + b"a" * 512 + b"\r\n0\r\n\r\n", 413),
]  # fmt: skip


@pytest.mark.parametrize(("name", "payload", "status"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus(stack: tuple[Router, Backend], name: str, payload: bytes, status: int) -> None:
    router, backend = stack
    received, closed = exchange(router, payload)
    assert received.startswith(b"HTTP/1.1 %d " % status), (name, received[:200])
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert closed, f"{name}: connection left open"
    assert not any("smuggled" in line for line in backend.requests_seen())


# What every request below carries, and what the router adds for a client at 127.0.0.1 it does not trust.
BASE = b"Host: h.localhost\r\nX-Request-Id: rid-1\r\nConnection: close\r\n"
OWN = (
    b"X-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
    b"X-Forwarded-Host: h.localhost\r\nX-Request-Id: rid-1\r\n"
)
SPOOFED = (
    b"Forwarded: for=6.6.6.6;proto=https\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n"
    b"X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
)
UNDERSCORED = b"X_Forwarded_Host: evil.example\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n"

# (name, trusted peer, request, status, exact bytes the backend receives or None for nothing)
HEADER_CORPUS = [
    ("connection-names-host", False,
     b"GET /p1 HTTP/1.1\r\nHost: h.localhost\r\nX-Request-Id: rid-1\r\nConnection: close, host, x-private\r\n"
     b"X-Private: 1\r\nAccept: */*\r\n\r\n",
     200, b"GET /p1 HTTP/1.1\r\nHost: h.localhost\r\nAccept: */*\r\n" + OWN + b"\r\n"),
    ("underscore-transfer-encoding", False,
     b"POST /p2 HTTP/1.1\r\n" + BASE + b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 400, None),
    ("underscore-content-length", False,
     b"POST /p3 HTTP/1.1\r\n" + BASE + b"Content_Length: 5\r\n\r\nhello", 400, None),
    ("underscore-forwarding-dropped", False,
     b"GET /p4 HTTP/1.1\r\n" + BASE + UNDERSCORED + b"X_Custom: kept\r\n\r\n",
     200, b"GET /p4 HTTP/1.1\r\nHost: h.localhost\r\nX_Custom: kept\r\n" + OWN + b"\r\n"),
    ("client-forwarding-overwritten", False,
     b"POST /p5 HTTP/1.1\r\n" + BASE + SPOOFED + b"Content-Length: 2\r\n\r\nok",
     200, b"POST /p5 HTTP/1.1\r\nHost: h.localhost\r\n" + OWN + b"Content-Length: 2\r\n\r\nok"),
    ("host-list", False,
     b"GET /p6 HTTP/1.1\r\nHost: h.localhost, other.localhost\r\nConnection: close\r\n\r\n", 400, None),
    ("host-twice", False,
     b"GET /p7 HTTP/1.1\r\nHost: h.localhost\r\nHost: other.localhost\r\nConnection: close\r\n\r\n", 400, None),
    ("trusted-proxy-forwarding-kept", True,
     b"GET /p8 HTTP/1.1\r\n" + BASE + SPOOFED + UNDERSCORED + b"\r\n",
     200, b"GET /p8 HTTP/1.1\r\nHost: h.localhost\r\nX-Forwarded-For: 6.6.6.6, 127.0.0.1\r\nX-Real-IP: 6.6.6.6\r\n"
     b"Forwarded: for=6.6.6.6;proto=https\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Proto: https\r\n"
     b"X-Forwarded-Host: evil.example\r\nX-Request-Id: rid-1\r\n\r\n"),
    ("trusted-proxy-without-forwarding", True,
     b"GET /p9 HTTP/1.1\r\n" + BASE + b"\r\n",
     200, b"GET /p9 HTTP/1.1\r\nHost: h.localhost\r\n" + OWN + b"\r\n"),
    # RFC 9112 §3.2.2: an absolute-form target's authority is the host; a Host header beside it is ignored.
    ("absolute-form-routes-by-its-authority", False,
     b"GET http://h.localhost/p11?q=1 HTTP/1.1\r\nHost: nowhere.localhost\r\nX-Request-Id: rid-1\r\n"
     b"Connection: close\r\n\r\n",
     200, b"GET /p11?q=1 HTTP/1.1\r\nHost: h.localhost\r\n" + OWN + b"\r\n"),
    ("absolute-form-other-authority", False, b"GET http://nowhere.localhost/p12 HTTP/1.1\r\n" + BASE + b"\r\n", 404, None),
    ("trusted-proxy-underscore-framing", True,
     b"POST /p10 HTTP/1.1\r\n" + BASE + b"Content_Length: 5\r\n\r\nhello", 400, None),
]  # fmt: skip


@pytest.fixture(scope="module")
def header_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Router, Router, RawBackend]]:
    """A raw backend behind two routers: one trusts no one (the default), one trusts 127.0.0.1."""
    backend = RawBackend()
    routers: list[Router] = []
    try:
        for extra in ((), ("--trusted-proxy", "127.0.0.0/8")):
            router = spawn_router(tmp_path_factory.mktemp("headers"), *extra)
            routers.append(router)
            target = {"id": "raw", "address": backend.address, "healthy": True}
            router.admin.put_table(table(route("h", [{"name": "g", "targets": [target]}])))
        yield routers[0], routers[1], backend
    finally:
        for router in routers:
            router.kill()
        backend.close()


@pytest.mark.parametrize(
    ("name", "trusted", "payload", "status", "sent"), HEADER_CORPUS, ids=[c[0] for c in HEADER_CORPUS]
)
def test_header_policy(
    header_stack: tuple[Router, Router, RawBackend],
    name: str,
    trusted: bool,
    payload: bytes,
    status: int,
    sent: bytes | None,
) -> None:
    plain, trusting, backend = header_stack
    received, closed = exchange(trusting if trusted else plain, payload)
    assert received.startswith(b"HTTP/1.1 %d " % status), (name, received[:200])
    assert closed
    path = payload.split(b" ", 2)[1]
    if b"://" in path:  # absolute-form: the backend gets the origin form
        path = path[path.index(b"/", path.index(b"://") + 3) :]
    assert backend.received.get(path) == sent


def test_slowloris_gets_408(stack: tuple[Router, Backend]) -> None:
    router, backend = stack
    started = time.monotonic()
    received, closed = exchange(
        router, b"GET /slow HTTP/1.1\r\nHost: h.localhost\r\nX-A: " + b"a" * 200, trickle=0.02
    )
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert closed
    assert time.monotonic() - started < 4.5
    assert "GET /slow" not in backend.requests_seen()


def test_valid_chunked_request_passes(stack: tuple[Router, Backend]) -> None:
    router, _ = stack
    received, _ = exchange(
        router,
        b"POST /echo HTTP/1.1\r\nHost: h.localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.endswith(b"hello world")


def test_pipelined_requests_answered_in_order(stack: tuple[Router, Backend]) -> None:
    router, _ = stack
    payload = (
        b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: h.localhost\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: h.localhost\r\nContent-Length: 5\r\n\r\nfirst"
        b"GET /a HTTP/1.1\r\nHost: h.localhost\r\nConnection: close\r\n\r\n"
    )
    received, closed = exchange(router, payload)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.index(b"slept") < received.index(b"first") < received.index(b"\r\n\r\nv1 ")
    assert closed


FRAGMENTS = [
    b"GET / HTTP/1.1\r\n", b"POST /echo HTTP/1.1\r\n", b"Host: h.localhost\r\n", b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n", b"\r\n", b"0\r\n\r\n", b"3\r\nabc\r\n", b"\n", b"\r", b" ", b":",
    b"Connection: close\r\n", b"Expect: 100-continue\r\n", b"Upgrade: websocket\r\nConnection: upgrade\r\n",
]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=12).map(b"".join),
    )
)
def test_random_bytes_never_crash_or_leak(stack: tuple[Router, Backend], data: bytes) -> None:
    router, _ = stack
    with socket.create_connection(("127.0.0.1", router.port), timeout=3) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            pass


def test_after_fuzzing_router_is_alive_and_holds_no_connections(stack: tuple[Router, Backend]) -> None:
    router, _ = stack
    assert router.proc.poll() is None
    with httpx.Client() as client:
        assert client.get(f"{router.url}/a", headers={"Host": "h.localhost"}).status_code == 200
    wait_for(lambda: router.admin.metrics()["connections"] == 0, 5, "connections to close")

"""Retry rules against a backend that drops requests, upstream timeouts, connection limits, 100-continue."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import get, group, route, table


class _DropHandler(socketserver.BaseRequestHandler):
    """Reads a request head and closes without answering (a crash after the request was written)."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        if data.startswith(b"GET /healthz"):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            return
        self.server.seen.append(data.split(b"\r\n", 1)[0])  # type: ignore[attr-defined]


@pytest.fixture
def dropping_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _DropHandler)
    server.seen = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_failure_after_write_retries_only_idempotent(start_backend, start_router, dropping_server):
    good = start_backend("v1")
    drop_port = dropping_server.server_address[1]
    router = start_router()
    router.admin.put_table(
        {"routes": [{"name": "r", "hosts": ["r.localhost"], "groups": [{"name": "g", "targets": [
            {"id": "drop", "address": f"127.0.0.1:{drop_port}", "healthy": True},
            {"id": "good", "address": good.address, "healthy": True}]}]}]}
    )  # fmt: skip
    get_status, post_status = [], []
    with httpx.Client() as client:
        for i in range(30):
            get_status.append(get(client, router, "/", "r.localhost").status_code)
            r = client.post(f"{router.url}/echo", content=b"p%d" % i, headers={"Host": "r.localhost"})
            post_status.append(r.status_code)
    assert get_status == [200] * 30
    assert set(post_status) == {200, 502}, post_status
    dropped_posts = [line for line in dropping_server.seen if line.startswith(b"POST")]
    assert post_status.count(502) == len(dropped_posts)
    assert any(line.startswith(b"GET") for line in dropping_server.seen)


def test_upstream_response_timeout_is_504(start_backend, start_router):
    backend = start_backend()
    router = start_router("--response-timeout", "1")
    router.admin.put_table(table(route("t", [group("g", [backend], healthy=True)])))
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        r = get(client, router, "/sleep?s=10", "t.localhost")
        elapsed = time.monotonic() - started
        assert r.status_code == 504
        # Not before the 1 s timeout, and not when the backend would have answered (10 s): the bounds are
        # wide because the machine is shared; the figure itself is the router's business, not this test's.
        assert 0.9 < elapsed < 9
        assert get(client, router, "/", "t.localhost").status_code == 200


def test_connection_limit(start_router):
    router = start_router("--max-connections", "2")
    socks = [socket.create_connection(("127.0.0.1", router.port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", router.port)) as third:
            third.settimeout(5)
            assert third.recv(4096).startswith(b"HTTP/1.1 503 ")
    finally:
        for s in socks:
            s.close()


def test_expect_100_continue(start_backend, start_router):
    backend = start_backend()
    router = start_router()
    router.admin.put_table(table(route("e", [group("g", [backend], healthy=True)])))
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: e.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        data = b""
        while not data.endswith(b"hello"):
            data += sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 200 OK")


def test_idle_keep_alive_connection_is_closed(start_backend, start_router):
    backend = start_backend()
    router = start_router("--idle-timeout", "1")
    router.admin.put_table(table(route("i", [group("g", [backend], healthy=True)])))
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: i.localhost\r\nConnection: keep-alive\r\n\r\n")
        reply = b""
        while not reply.endswith(b"v1 %d" % backend.port):
            reply += sock.recv(4096)
        assert b"Connection: keep-alive" in reply
        started = time.monotonic()
        assert sock.recv(4096) == b""
        assert time.monotonic() - started < 3

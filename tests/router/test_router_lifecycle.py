"""Tunnels, safe retries, graceful shutdown and the admin unix socket, against real processes."""

from __future__ import annotations

import signal
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import get, group, route, table, wait_for
from loopback import free_port


class _UpgradeHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if b"upgrade: echo" not in head.lower():
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            return
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
        if rest:
            sock.sendall(rest.upper())
        while chunk := sock.recv(4096):
            sock.sendall(chunk.upper())


@pytest.fixture
def upgrade_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _UpgradeHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _recv_until(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_upgrade_is_tunnelled(start_router, upgrade_server):
    router = start_router()
    router.admin.put_table(
        {"routes": [{"name": "u", "hosts": ["u.localhost"], "groups": [
            {"name": "g", "targets": [{"id": "ws", "address": f"127.0.0.1:{upgrade_server}", "healthy": True}]}]}]}
    )  # fmt: skip
    with socket.create_connection(("127.0.0.1", router.port)) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: u.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly"
        )
        first = _recv_until(sock, b"EARLY")
        assert first.startswith(b"HTTP/1.1 101 ")
        assert b"Upgrade: echo" in first
        sock.sendall(b"more bytes")
        assert _recv_until(sock, b"MORE BYTES").endswith(b"MORE BYTES")
    assert router.admin.target("ws")["in_flight"] in (0, 1)
    wait_for(lambda: router.admin.target("ws")["in_flight"] == 0, 5, "tunnel closed")


def test_connect_failures_are_retried_for_any_method(start_backend, start_router, tmp_path):
    live = start_backend("v1")
    dead_port = free_port()
    router = start_router()
    router.admin.put_table(
        {"routes": [{"name": "r", "hosts": ["r.localhost"], "groups": [{"name": "g", "targets": [
            {"id": "dead", "address": f"127.0.0.1:{dead_port}", "healthy": True},
            {"id": "live", "address": live.address, "healthy": True}]}]}]}
    )  # fmt: skip
    with httpx.Client() as client:
        for i in range(20):
            assert client.post(
                f"{router.url}/echo", content=b"x%d" % i, headers={"Host": "r.localhost"}
            ).content == (b"x%d" % i)
            assert get(client, router, "/", "r.localhost").status_code == 200
    assert router.admin.target("dead")["state"] == "unhealthy"
    rows = router.access_rows(40)
    assert len(rows) == 40
    assert {r["status"] for r in rows} == {200}
    assert max(r["retries"] for r in rows) == 1


@pytest.mark.slow
def test_sigterm_finishes_in_flight_then_exits(start_backend, start_router):
    backend = start_backend()
    router = start_router("--shutdown-timeout", "10")
    router.admin.put_table(table(route("s", [group("g", [backend], healthy=True)])))
    results: list[int] = []

    def slow() -> None:
        with httpx.Client(timeout=10) as client:
            results.append(get(client, router, "/sleep?s=2", "s.localhost").status_code)

    threads = [threading.Thread(target=slow) for _ in range(5)]
    for t in threads:
        t.start()
    wait_for(lambda: router.admin.target(f"g-{backend.port}")["in_flight"] == 5, 5, "requests in flight")
    started = time.monotonic()
    router.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{router.url}/", headers={"Host": "s.localhost"})
    for t in threads:
        t.join()
    assert results == [200] * 5
    assert router.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5


def test_admin_on_unix_socket(start_router, tmp_path):
    path = tmp_path / "admin.sock"
    router = start_router("--admin-socket", str(path))
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://router") as client:
        assert client.get("/table").status_code == 401
        reply = client.get("/table", headers={"Authorization": "Bearer test-token"})
    assert reply.json() == {"routes": []}
    assert path.stat().st_mode & 0o777 == 0o600
    assert router.admin.ping()

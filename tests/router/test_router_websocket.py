"""A real WebSocket conversation through the router: handshake, text, binary, a large frame, ping, close."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from conftest import HERE, PY, _read_line, _stop, wait_for


def _connect(port: int, host: str, path: str) -> ClientConnection:
    """A WebSocket client on the router's loopback port that names `host` (its only Host header)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return connect(f"ws://{host}{path}", sock=sock, max_size=4 << 20, open_timeout=5)


@pytest.fixture
def ws_backend() -> Iterator[int]:
    proc = subprocess.Popen([PY, str(HERE / "ws_backend.py")], stdout=subprocess.PIPE, text=True)
    try:
        yield int(_read_line(proc, "PORT").split()[1])
    finally:
        _stop(proc)


def test_a_websocket_conversation_is_tunnelled_both_ways(start_router, ws_backend):
    router = start_router()
    router.admin.put_table(
        {"routes": [{"name": "ws", "hosts": ["ws.localhost"], "groups": [
            {"name": "g", "targets": [{"id": "echo", "address": f"127.0.0.1:{ws_backend}", "healthy": True}]}]}]}
    )  # fmt: skip
    with _connect(router.port, "ws.localhost", "/chat") as ws:
        assert ws.response is not None and ws.response.status_code == 101
        assert ws.response.headers["X-Request-Id"]
        assert ws.recv(timeout=5) == "hello /chat via 127.0.0.1"
        ws.send("score 2:1")
        assert ws.recv(timeout=5) == "SCORE 2:1"
        ws.send(b"\x00\x01\x02")
        assert ws.recv(timeout=5) == b"\x02\x01\x00"
        big = bytes(range(256)) * 8192  # 2 MiB in one frame, across many TCP segments
        ws.send(big)
        assert ws.recv(timeout=10) == big[::-1]
        ws.ping(b"are you there").wait(timeout=5)
        assert router.admin.target("echo")["in_flight"] == 1, "an open tunnel counts as in flight"
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=1)
    wait_for(
        lambda: router.admin.target("echo")["in_flight"] == 0, 5, "tunnel closed after the close handshake"
    )
    rows = router.access_rows(1)
    assert [(r["path"], r["status"], r["target"]) for r in rows] == [("/chat", 101, "echo")]


def test_a_websocket_to_a_host_without_route_is_refused(start_router, ws_backend):
    router = start_router()
    with pytest.raises(InvalidStatus, match="HTTP 404"):
        _connect(router.port, "nobody.localhost", "/chat")

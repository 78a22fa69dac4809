"""The CLI's API client against a real HTTP server on loopback: auth, errors, keep-alive."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loopback import free_port
from sprout.cli import client as client_module
from sprout.cli.client import ApiClient
from sprout.errors import AuthError, NotFoundError, ServiceError, SproutError


class Api(BaseHTTPRequestHandler):
    """Answers like the daemon: JSON documents, errors with a `kind`."""

    protocol_version = "HTTP/1.1"
    connections: set[int] = set()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _send(self, status: int, body: bytes, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Routes of the test."""
        Api.connections.add(self.client_address[1])
        if self.headers.get("Authorization") != "Bearer secret":
            self._send(401, b'{"error": "missing or wrong token"}')
        elif self.path.startswith("/echo"):
            self._send(200, json.dumps({"path": self.path}).encode())
        elif self.path == "/missing":
            self._send(404, b'{"error": "shop/production: no such environment", "kind": "NotFoundError"}')
        elif self.path == "/broken":
            self._send(500, b"Internal Server Error")
        elif self.path == "/list":
            self._send(200, b"[1, 2]")
        else:
            self._send(200, b'{"closing": true}', close=True)

    def do_POST(self) -> None:
        """Echo the JSON body."""
        Api.connections.add(self.client_address[1])
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(200, json.dumps({"got": body, "type": self.headers["Content-Type"]}).encode())


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Api.connections = set()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_calls_send_the_token_and_reuse_one_connection(api: str) -> None:
    client = ApiClient(api, "secret")
    try:
        assert client.get("/echo", app="shop", env=None, limit=5) == {"path": "/echo?app=shop&limit=5"}
        assert client.post("/echo", {"v": "v2"}) == {"got": {"v": "v2"}, "type": "application/json"}
        assert client.get("/echo") == {"path": "/echo"}
    finally:
        client.close()
    assert len(Api.connections) == 1


def test_an_idle_connection_is_replaced_before_the_server_drops_it(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "REUSE_IDLE_S", 0.0)
    client = ApiClient(api, "secret")
    try:
        client.get("/echo")
        client.get("/echo")
    finally:
        client.close()
    assert len(Api.connections) == 2


def test_a_response_that_closes_the_connection_does_not_break_the_next_call(api: str) -> None:
    client = ApiClient(api, "secret")
    try:
        assert client.get("/close") == {"closing": True}
        assert client.get("/echo") == {"path": "/echo"}
    finally:
        client.close()


def test_errors_come_back_as_the_kind_the_daemon_named(api: str) -> None:
    client = ApiClient(api, "secret")
    try:
        with pytest.raises(NotFoundError, match="shop/production: no such environment"):
            client.get("/missing")
        with pytest.raises(SproutError, match="Internal Server Error"):
            client.get("/broken")
        with pytest.raises(ServiceError, match="non-object JSON"):
            client.get("/list")
    finally:
        client.close()
    with pytest.raises(AuthError, match="missing or wrong token"):
        ApiClient(api, "wrong").get("/echo")


def test_an_unreachable_daemon_is_a_service_error_naming_it() -> None:
    port = free_port()
    with pytest.raises(
        ServiceError, match=rf"control plane at http://127.0.0.1:{port}: GET /v1/status failed"
    ):
        ApiClient(f"http://127.0.0.1:{port}", "secret", timeout=2).get("/v1/status")

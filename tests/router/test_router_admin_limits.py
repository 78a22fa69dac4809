"""The admin API spends nothing before authentication, caps its connections and refuses malformed lengths.

Issue 19, acceptance 3: 100 unauthenticated connections each announcing a 16 MiB body get 401 at once and
the router's RSS grows by less than 20 MB.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conftest import Router, wait_for
from sprout.errors import AuthError
from sprout.router.client import RouterAdmin

ANNOUNCE_16_MIB = b"PUT /table HTTP/1.1\r\nHost: admin\r\nContent-Length: 16777216\r\n\r\n"
UNAUTHORIZED = {"error": "missing or wrong bearer token; pass the router's admin token"}


def read_response(sock: socket.socket, deadline: float) -> bytes:
    """Everything the admin server sends before it closes (it always closes after one response)."""
    received = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        received += chunk
    return received


def status_and_doc(response: bytes) -> tuple[int, object]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def call(router: Router, request: bytes, timeout: float = 10.0) -> tuple[int, object]:
    with socket.create_connection(("127.0.0.1", router.admin_port), timeout=timeout) as sock:
        sock.sendall(request)
        return status_and_doc(read_response(sock, time.monotonic() + timeout))


def test_unauthenticated_16_mib_announcements_cost_nothing(start_router: Callable[..., Router]) -> None:
    router = start_router()
    process = psutil.Process(router.proc.pid)
    assert router.admin.ping()
    before = process.memory_info().rss
    socks = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", router.admin_port), timeout=10)
            socks.append(sock)
            sock.sendall(ANNOUNCE_16_MIB)
        # "At once": the 401 comes back without a byte of the announced body sent (the router
        # would otherwise wait for it until its body timeout, then answer 408).
        deadline = time.monotonic() + 5.0
        answers = [status_and_doc(read_response(sock, deadline)) for sock in socks]
        grown = process.memory_info().rss - before
    finally:
        for sock in socks:
            sock.close()
    assert answers == [(401, UNAUTHORIZED)] * 100
    print(f"router RSS grew by {grown / 1e6:.2f} MB for 100 unauthenticated 16 MiB announcements")
    assert grown < 20_000_000, f"router RSS grew by {grown} bytes"
    assert router.admin.ping()


def test_a_refused_caller_that_sent_its_body_still_reads_its_401(start_router: Callable[..., Router]) -> None:
    router = start_router()
    with RouterAdmin(f"http://127.0.0.1:{router.admin_port}", "wrong-token") as admin:
        for _ in range(5):
            with pytest.raises(AuthError) as err:
                admin.put_table({"routes": [], "padding": "x" * 200_000})
            assert str(err.value) == (
                f"router admin at http://127.0.0.1:{router.admin_port}: token rejected; use the router's --token-file"
            )


BAD_LENGTHS = [
    ("letters", b"Content-Length: abc\r\n", 400, "Content-Length 'abc' is not a byte count"),
    ("negative", b"Content-Length: -1\r\n", 400, "Content-Length '-1' is not a byte count"),
    ("plus", b"Content-Length: +5\r\n", 400, "Content-Length '+5' is not a byte count"),
    ("list", b"Content-Length: 5, 5\r\n", 400, "Content-Length '5, 5' is not a byte count"),
    ("huge", b"Content-Length: 99999999999999999999\r\n", 400,
     "Content-Length '99999999999999999999' is not a byte count"),
    ("duplicate", b"Content-Length: 5\r\nContent-Length: 5\r\n", 400, "more than one Content-Length header"),
    ("chunked", b"Transfer-Encoding: chunked\r\n", 400,
     "Transfer-Encoding is not accepted by the admin API; send a Content-Length"),
    ("over-limit", b"Content-Length: 16777217\r\n", 413,
     "body of 16777217 bytes is over the admin limit of 16777216"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "line", "status", "error"), BAD_LENGTHS, ids=[c[0] for c in BAD_LENGTHS])
def test_malformed_lengths_are_refused(
    start_router: Callable[..., Router], name: str, line: bytes, status: int, error: str
) -> None:
    router = start_router()
    request = b"PUT /table HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer test-token\r\n" + line + b"\r\n"
    assert call(router, request) == (status, {"error": error})
    assert router.admin.ping()
    assert "Traceback" not in (router.state.parent / "router.err").read_text()


def test_connections_over_the_cap_get_503_and_idle_ones_408(start_router: Callable[..., Router]) -> None:
    router = start_router("--admin-max-connections", "2")
    held = [socket.create_connection(("127.0.0.1", router.admin_port), timeout=10) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(b"GET /table HTTP/1.1\r\n")
        wait_for(
            lambda: call(router, b"GET /healthz HTTP/1.1\r\n\r\n")[0] == 503,
            10,
            "the third connection refused",
        )
        assert call(router, b"GET /healthz HTTP/1.1\r\n\r\n") == (
            503,
            {"error": "too many admin connections; retry shortly"},
        )
        # An unfinished head is cut at the admin header timeout (5 s), which frees its slot.
        deadline = time.monotonic() + 5.0 + 10.0
        answers = [status_and_doc(read_response(sock, deadline)) for sock in held]
    finally:
        for sock in held:
            sock.close()
    assert answers == [(408, {"error": "request not received in time"})] * 2
    wait_for(lambda: router.admin.ping(), 10, "the admin API to take connections again")


def test_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "router.token"
    token.write_text("test-token\n")
    token.chmod(0o644)
    cmd = [sys.executable, "-m", "sprout.router", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
           "--token-file", str(token), "--state", str(tmp_path / "table.json")]  # fmt: skip
    env = {**os.environ, "SPROUT_HOME": str(tmp_path / "home")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert f"error: {token}: router token file has mode 644; run `chmod 600 {token}`" in done.stderr

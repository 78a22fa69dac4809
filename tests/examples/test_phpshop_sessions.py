"""phpshop's sessions through PHP's own memcached handler: a session written while a node was away is read
whole the moment that node accepts connections again, before anything copied it there."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymemcache.client.base import Client

from loopback import PORTS
from sprout.services import memcached
from sprout.services.memcached import MemcachedNode

PHPSHOP = Path(__file__).resolve().parents[2] / "examples" / "phpshop"
SESSIONS = 20

#: One request of the shop, as far as sessions go: the browser's cookie (argv[1], may be empty), the
#: node list (argv[2]), and a cart line to add (argv[3], may be empty); prints the session id and data.
REQUEST = """<?php
require $argv[4];
putenv('SESSION_STORE_URL=memcached://' . $argv[2]);
if ($argv[1] !== '') {
    $_COOKIE[session_name()] = $argv[1];
}
start_session();
if ($argv[3] !== '') {
    $_SESSION['cart'][$argv[3]] = 1;
}
echo json_encode(['id' => session_id(), 'session' => $_SESSION]), "\\n";
session_write_close();
"""


@pytest.fixture
def request_script(tmp_path: Path) -> Path:
    assert shutil.which("php"), "php-cli is not installed (scripts/services.sh installs it)"
    script = tmp_path / "request.php"
    script.write_text(REQUEST)
    return script


@pytest.fixture
def nodes(memcached_nodes: list[MemcachedNode]) -> Iterator[list[MemcachedNode]]:
    """Zone a's and b's nodes; b may be replaced by the test (the replacement is stopped here)."""
    current = list(memcached_nodes)
    yield current
    if current[1] is not memcached_nodes[1]:
        memcached.stop_node(current[1])


def _request(script: Path, cookie: str, nodes: list[MemcachedNode], add: str = "") -> dict[str, object]:
    url = ",".join(n.address for n in nodes)
    done = subprocess.run(
        [
            "php",
            "-c",
            str(PHPSHOP / "php.ini"),
            str(script),
            cookie,
            url,
            add,
            str(PHPSHOP / "src" / "sessions.php"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and not done.stderr, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def _held(node: MemcachedNode, session: str) -> bool:
    client = Client((node.host, node.port), connect_timeout=1, timeout=2)
    try:
        return client.get(f"phpshop.sess.{session}") is not None
    finally:
        client.close()


def test_a_session_written_while_a_node_was_away_is_read_whole_when_it_accepts_again(
    request_script: Path, nodes: list[MemcachedNode]
) -> None:
    a, b = nodes
    memcached.stop_node(b)
    # Shoppers fill carts while b refuses connections: the handler writes every session to a alone.
    carts = [_request(request_script, "", [a, b], add=f"product-{i}") for i in range(SESSIONS)]
    ids = [str(cart["id"]) for cart in carts]
    assert all(
        _held(a, s) and cart["session"] == {"cart": {f"product-{i}": 1}}
        for i, (s, cart) in enumerate(zip(ids, carts, strict=True))
    )
    # b is back on its port without those sessions: the moment before a refill's catch-up copies them.
    nodes[1] = b = memcached.start_node("b", 16, port=b.port, ports=PORTS)
    assert not any(_held(b, s) for s in ids)

    for i, session in enumerate(ids):
        seen = _request(request_script, session, [a, b])
        assert seen == {"id": session, "session": {"cart": {f"product-{i}": 1}}}, f"cart {i} read as {seen}"
    # Each session is on both nodes again, so losing a next loses none of them.
    assert all(_held(b, s) for s in ids)
    memcached.stop_node(a)
    assert [_request(request_script, s, [a, b])["session"] for s in ids] == [c["session"] for c in carts]


def test_an_unknown_or_malformed_session_id_still_gets_a_new_empty_session(
    request_script: Path, nodes: list[MemcachedNode]
) -> None:
    for cookie in ("nosuchsession0000000000000", "../../etc/passwd", "x" * 300):
        seen = _request(request_script, cookie, nodes)
        assert seen["id"] != cookie and not seen["session"], seen

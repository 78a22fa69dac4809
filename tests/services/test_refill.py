"""A lost memcached node comes back on its port already holding its peer's items, flags and expiries."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pymemcache.client.base import Client

from loopback import PORTS
from sprout.services import memcached
from sprout.services.memcached import MemcachedNode
from sprout.services.refill import refill_node

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[MemcachedNode]]:
    nodes = memcached.start_nodes(["a", "b"], memory_mb=64, log_dir=tmp_path, ports=PORTS)
    yield nodes
    memcached.stop_nodes(nodes)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True


def test_a_restarted_node_refuses_connections_until_it_holds_every_item(
    pair: list[MemcachedNode], tmp_path: Path
) -> None:
    a, b = pair
    peer = Client((b.host, b.port), timeout=2)
    for i in range(500):
        peer.set(f"sess:{i}", f"cart {i}".encode(), expire=600 if i % 2 else 0, flags=i % 4)
    os.kill(a.pid, signal.SIGKILL)
    # The kill is asynchronous: until the process is gone its socket may still accept, then reset.
    psutil.Process(a.pid).wait(timeout=10)
    seen: list[tuple[bool, int]] = []  # (refused, items) while the refill runs
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if _refused(a.port):
                seen.append((True, 0))
            else:
                seen.append((False, int(Client((a.host, a.port), timeout=2).stats()[b"curr_items"])))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = refill_node("a", a.port, [b], 64, tmp_path / "a.mem", tmp_path / "a.log", ports=PORTS)
    finally:
        done.set()
        watcher.join()
    try:
        assert result.copied == 500 and result.node.port == a.port
        assert seen and all(refused or items == 500 for refused, items in seen), seen
        back = Client((a.host, a.port), timeout=2)
        for i in (0, 1, 2, 499):
            assert back.get(f"sess:{i}") == f"cart {i}".encode()
        meta = back.raw_command("mg sess:1 f t", b"\r\n").split()
        assert meta[0] == b"HD" and meta[1] == b"f1" and 590 <= int(meta[2][1:]) <= 600
        assert back.raw_command("mg sess:2 t", b"\r\n").split()[1] == b"t-1"  # no expiry stays none
    finally:
        memcached.stop_node(result.node)

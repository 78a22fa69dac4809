"""A lost memcached node comes back on its port already holding its peer's items, flags and expiries."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pymemcache.client.base import Client

from loopback import LEASES, PORTS
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


# The daemon's side of a refill, in a process of its own that the test kills -9 mid-fill.
_REFILLER = """
import sys
from pathlib import Path
from sprout.ports import PortBook
from sprout.services.memcached import MemcachedNode
from sprout.services.refill import refill_node

port, peer_port, folder, leases = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
peer = MemcachedNode("b", "127.0.0.1", peer_port, 0, None, 64)  # type: ignore[arg-type]
refill_node("a", port, [peer], 64, folder / "a.mem", folder / "a.log", ports=PortBook(leases))
"""


def test_a_daemon_killed_mid_refill_leaves_no_filler_running(
    pair: list[MemcachedNode], tmp_path: Path
) -> None:
    a, b = pair
    peer = Client((b.host, b.port), timeout=5)
    items = 40_000
    for start in range(0, items, 1000):
        peer.set_many({f"sess:{i}": b"x" * 200 for i in range(start, start + 1000)}, expire=600)
    os.kill(a.pid, signal.SIGKILL)
    psutil.Process(a.pid).wait(timeout=10)
    refiller = subprocess.Popen(
        [sys.executable, "-c", _REFILLER, str(a.port), str(b.port), str(tmp_path), str(LEASES)]
    )
    filler: psutil.Process | None = None
    try:
        # The filler: the refiller's memcached child that keeps its items in the memory file.
        deadline = time.monotonic() + 30
        while filler is None:
            assert refiller.poll() is None and time.monotonic() < deadline, "no filler was started"
            found = [c for c in psutil.Process(refiller.pid).children() if "a.mem" in " ".join(c.cmdline())]
            filler = found[0] if found else None
            time.sleep(0.01)
        args = filler.cmdline()
        filler_port = int(args[args.index("-p") + 1])
        time.sleep(0.3)
        # Mid-fill: the filler holds some of the items, the node's own port still refuses.
        held = 0
        while held == 0:
            assert time.monotonic() < deadline, "the filler never received an item"
            held = int(Client(("127.0.0.1", filler_port), timeout=2).stats()[b"curr_items"])
        assert held < items and _refused(a.port)
        os.kill(refiller.pid, signal.SIGKILL)
        refiller.wait(timeout=10)
        filler.wait(timeout=10)  # psutil.TimeoutExpired if the filler outlived the process that ran it
        assert _refused(a.port) and _refused(filler_port)
    finally:
        if refiller.poll() is None:
            refiller.kill()
            refiller.wait()
        if filler is not None and filler.is_running():
            filler.kill()

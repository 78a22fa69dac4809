"""The port allocator: leases recorded in one file, never one port to two holders, even under contention."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from sprout.ports import FIRST_PORT, LAST_PORT, PortBook

PROCESSES, EACH = 8, 40

#: Leases EACH ports as fast as it can once the start file appears, prints them, then waits to be told to
#: exit (its leases last as long as it runs).
LEASER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from sprout.ports import PortBook

    book, go = PortBook(Path(sys.argv[1])), Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.005)
    print(json.dumps([book.lease("contender") for _ in range(int(sys.argv[3]))]), flush=True)
    sys.stdin.read()
    """
)


def test_processes_leasing_at_once_never_get_the_same_port(tmp_path: Path) -> None:
    book, go = PortBook(tmp_path / "ports.db"), tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LEASER, str(book.path), str(go), str(EACH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        go.touch()
        leased = [json.loads(proc.stdout.readline()) for proc in procs]  # type: ignore[union-attr]
        ports = [port for batch in leased for port in batch]
        assert len(ports) == PROCESSES * EACH
        # Without the record, 320 picks in this range repeat a port about four times in five runs.
        assert len(set(ports)) == len(ports)
        assert all(FIRST_PORT <= port <= LAST_PORT for port in ports)
        holders = {lease.pid for lease in book.leases().values()}
        assert holders == {proc.pid for proc in procs}
        assert book.reclaim() == []
    finally:
        for proc in procs:
            proc.communicate("")
    # Their holders are gone: the leases are free again.
    assert book.reclaim() == sorted(ports)
    assert book.leases() == {}


def test_a_lease_follows_its_process_and_only_its_owner_ends_it(tmp_path: Path) -> None:
    book = PortBook(tmp_path / "ports.db")
    port = book.lease("instance i-1")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        book.hand_over(port, "instance i-1", child.pid)
        assert book.leases()[port].pid == child.pid
        # Another process may neither claim it nor end it.
        assert book.claim(port, "memcached a") is False
        book.release(port, "instance i-2")
        assert port in book.leases()
    finally:
        child.communicate(b"")
    assert book.claim(port, "memcached a") is True
    assert book.leases()[port].owner == "memcached a"
    book.release(port, "memcached a")
    assert book.leases() == {}


def test_a_port_something_listens_on_is_not_claimed(tmp_path: Path) -> None:
    book = PortBook(tmp_path / "ports.db")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert book.claim(listener.getsockname()[1], "memcached a") is False
    assert book.leases() == {}

"""Loopback ports for Sprout's processes, leased from one record so no two are ever handed the same one.

Binding to port 0 and closing the socket gives a port that is free *now*; nothing stops the next caller
from being given the same one before the first process listens on it (an instance only binds its port
after its bundle is fetched and installed). So every port Sprout hands out is leased in a small SQLite
record: by default `run/ports.db` in the Sprout home, or the file named by $SPROUT_PORT_LEASES, which
several homes (a test suite's) share. A port is handed out only when it is neither leased nor bound.

A lease names the process that holds it (pid and process start, so a reused pid is no holder): first the
process that asked, then, once started, the process that listens on it. A lease whose holder is gone is
free again, so what a crashed daemon or instance leased comes back by itself; stopping a process releases
its lease at once. The record is written without fsync: a machine crash ends every holder, so a record it
leaves broken is simply started afresh.

Ports come from below the kernel's ephemeral range (32768 and up on Linux, 49152 and up elsewhere), where
the source ports of outgoing connections are taken from: a leased port is then never taken by a client.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from sprout.errors import ServiceError
from sprout.paths import Home
from sprout.process_start import Start

HOST = "127.0.0.1"
#: The ports leased: below every common ephemeral range, above most well-known services.
FIRST_PORT, LAST_PORT = 20000, 32767
#: Names a lease file shared by several homes (a test suite's), instead of the home's own.
LEASES_ENV = "SPROUT_PORT_LEASES"
#: Seconds a process waits for another's lease transaction (each lasts milliseconds).
BUSY_TIMEOUT = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    port INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since_boot REAL,
    started_at REAL NOT NULL,
    leased_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Lease:
    """A port handed out: what it is for and the process holding it."""

    port: int
    owner: str
    pid: int
    started: Start

    def holder_alive(self) -> bool:
        """Whether the holding process still runs (not a reused pid, not a zombie)."""
        try:
            proc = psutil.Process(self.pid)
            return self.started.matches(proc) and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def instance_owner(instance_id: str) -> str:
    """The owner an instance's port is leased to."""
    return f"instance {instance_id}"


class PortBook:
    """The lease record of one home (or of several sharing $SPROUT_PORT_LEASES)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, home: Home) -> PortBook:
        """The book $SPROUT_PORT_LEASES names, else the home's own `run/ports.db`."""
        shared = os.environ.get(LEASES_ENV)
        return cls(Path(shared) if shared else home.run / "ports.db")

    def lease(self, owner: str, host: str = HOST) -> int:
        """A port on `host` neither leased nor bound, leased to this process for `owner` (e.g. an instance)."""
        with self._transaction() as conn:
            taken = {row[0] for row in conn.execute("SELECT port FROM leases")}
            port = _unbound(host, taken)
            if port is None:
                taken -= _reclaim(conn)
                port = _unbound(host, taken)
            if port is None:
                raise ServiceError(
                    f"ports: no free port left in {FIRST_PORT}-{LAST_PORT} on {host} "
                    f"({len(taken)} leased in {self.path}); stop some instances"
                )
            _record(conn, port, owner, os.getpid())
            return port

    def claim(self, port: int, owner: str, host: str = HOST) -> bool:
        """Lease `port` itself (a node coming back on its old port) unless a live process holds its lease
        or listens on it; True when leased."""
        with self._transaction() as conn:
            lease = _lease(conn, port)
            if (lease is not None and lease.holder_alive()) or port_taken(host, port):
                return False
            _record(conn, port, owner, os.getpid())
            return True

    def hand_over(self, port: int, owner: str, pid: int) -> None:
        """From now on `pid` holds `owner`'s lease of `port`: it lasts as long as that process runs."""
        try:
            started = Start.of(psutil.Process(pid))
        except psutil.Error:
            self.release(port, owner)
            return
        with self._transaction() as conn:
            conn.execute(
                "UPDATE leases SET pid = ?, since_boot = ?, started_at = ? WHERE port = ? AND owner = ?",
                (pid, started.since_boot, started.at, port, owner),
            )

    def adopt(self, port: int, owner: str, pid: int) -> None:
        """Lease `port` to the running process `pid` that listens on it (found after a restart)."""
        with self._transaction() as conn:
            lease = _lease(conn, port)
            if lease is None or not lease.holder_alive():
                _record(conn, port, owner, os.getpid())
        self.hand_over(port, owner, pid)

    def release(self, port: int, owner: str) -> None:
        """End `owner`'s lease of `port` (its process stopped); a lease the port has since gone to stays."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE port = ? AND owner = ?", (port, owner))

    def reclaim(self) -> list[int]:
        """End the leases whose holder is gone; the ports freed."""
        with self._transaction() as conn:
            return sorted(_reclaim(conn))

    def leases(self) -> dict[int, Lease]:
        """The leases recorded now, by port (holders not checked)."""
        with self._transaction() as conn:
            return {port: lease for port in _ports(conn) if (lease := _lease(conn, port)) is not None}

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: every process reading the leases to pick a port waits for the others."""
        try:
            conn = self._begin()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise
            # Only a machine crash mid-write breaks the file, and it ended every holder and so every lease.
            for path in (self.path, self.path.with_name(self.path.name + "-journal")):
                path.unlink(missing_ok=True)
            conn = self._begin()
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _begin(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            # No fsync per lease (a lease takes a millisecond, not tens): see the module's docstring.
            conn.execute("PRAGMA journal_mode = PERSIST")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn


def _unbound(host: str, taken: set[int]) -> int | None:
    """A port of the range not in `taken` that nothing has bound, tried in random order."""
    free = LAST_PORT - FIRST_PORT + 1 - len(taken)
    for _ in range(min(200, max(free, 0))):
        port = random.randint(FIRST_PORT, LAST_PORT)
        if port not in taken and not port_taken(host, port, listeners_only=False):
            return port
        taken = taken | {port}
    return None


def port_taken(host: str, port: int, *, listeners_only: bool = True) -> bool:
    """True when `port` on `host` cannot be bound now: a listener holds it, or unless `listeners_only` any
    socket does (a connection, one in TIME_WAIT, which a server binding without SO_REUSEADDR trips on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if listeners_only:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _record(conn: sqlite3.Connection, port: int, owner: str, pid: int) -> None:
    started = Start.of(psutil.Process(pid))
    conn.execute(
        "INSERT OR REPLACE INTO leases (port, owner, pid, since_boot, started_at, leased_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (port, owner, pid, started.since_boot, started.at, time.time()),
    )


def _lease(conn: sqlite3.Connection, port: int) -> Lease | None:
    row = conn.execute(
        "SELECT owner, pid, since_boot, started_at FROM leases WHERE port = ?", (port,)
    ).fetchone()
    if row is None:
        return None
    owner, pid, since_boot, started_at = row
    return Lease(port, owner, pid, Start(at=started_at, since_boot=since_boot))


def _ports(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT port FROM leases ORDER BY port")]


def _reclaim(conn: sqlite3.Connection) -> set[int]:
    """Delete the leases whose holder is gone; their ports."""
    gone = {port for port in _ports(conn) if (lease := _lease(conn, port)) and not lease.holder_alive()}
    conn.executemany("DELETE FROM leases WHERE port = ?", [(port,) for port in gone])
    return gone

"""One SQLite database file shared by threads and processes: a connection per thread, short write locks."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sprout.state.schema import connect, migrate


def where_clause(**filters: Any) -> tuple[str, list[Any]]:
    """A WHERE clause (or "") matching every filter that is not None."""
    clauses = [f"{column} = ?" for column, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class Database:
    """A migrated SQLite file; `_write()` is one `BEGIN IMMEDIATE` transaction, reads autocommit."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.schema_version = migrate(self._conn())

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a forked child opens its own rather than share its parent's)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = connect(self.path)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction around several calls on this thread: reads inside see no other writer's
        changes, the writes commit together or not at all, and other writers (threads or processes) wait."""
        conn = self._conn()
        if getattr(self._local, "transaction", False):
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.transaction = True
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._local.transaction = False
        conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the database's write lock up front (no upgrade deadlocks);
        inside `transaction()` it is part of that one."""
        conn = self._conn()
        if getattr(self._local, "transaction", False):
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (busy, disk full) may leave the transaction open: never keep this thread's
            # connection inside it. SQLite may also have rolled back already; the first error is raised.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _read(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one query."""
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

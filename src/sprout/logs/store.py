"""The central log store: SQLite (WAL) with an FTS5 trigram index, fed from log files by byte offset.

Ingestion is exactly-once across crashes: each chunk's rows and the file's new offset (with the file's
identity: inode, device and its first bytes) are written in one transaction, so a crash either keeps
both or neither. Only complete lines are taken; a partial last line waits for its newline. A file whose
identity changed (rotated, replaced) or that shrank below the offset (truncated) is read from the start.
Retention (`prune_before`) deletes old lines in small batches and never touches the offsets, so a pruned
line is never ingested again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sprout.errors import UserError
from sprout.logs.record import SOURCES, ParsedLine, parse_line

READ_CHUNK = 1024 * 1024
HEAD_BYTES = 64
DEFAULT_LIMIT = 1000
#: Lines deleted per transaction when pruning: ingestion waits at most one such batch.
PRUNE_BATCH = 2000
SEARCH_FTS = "fts5-trigram"
SEARCH_LIKE = "like"
# Trigrams need three characters; shorter patterns are matched with LIKE instead.
_MIN_FTS_PATTERN = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    instance TEXT NOT NULL,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    version TEXT NOT NULL,
    zone TEXT NOT NULL,
    msg TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_lines_ts ON log_lines (ts);
CREATE INDEX IF NOT EXISTS log_lines_instance ON log_lines (instance, id);
CREATE TABLE IF NOT EXISTS log_offsets (
    path TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    head BLOB NOT NULL
);
"""
_FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS log_fts USING fts5(
    msg, content='log_lines', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS log_lines_fts_insert AFTER INSERT ON log_lines BEGIN
    INSERT INTO log_fts (rowid, msg) VALUES (new.id, new.msg);
END;
CREATE TRIGGER IF NOT EXISTS log_lines_fts_delete AFTER DELETE ON log_lines BEGIN
    INSERT INTO log_fts (log_fts, rowid, msg) VALUES ('delete', old.id, old.msg);
END;
"""
_COLUMNS = "id, ts, source, stream, instance, app, env, version, zone, msg"


@dataclass(frozen=True)
class LogRow:
    """One stored log line."""

    id: int
    ts: float
    source: str
    stream: str
    instance: str
    app: str
    env: str
    version: str
    zone: str
    msg: str


@dataclass(frozen=True)
class _Position:
    """Where reading a file resumes, and the identity of the file that offset belongs to."""

    inode: int
    device: int
    offset: int
    head: bytes


class LogStore:
    """Log lines from every instance and the router, queryable by time, instance, version and text."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        #: Re-entrant, so `one_moment` can hold it across several reads.
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self.search_mode = self._enable_fts()

    def _enable_fts(self) -> str:
        """Create the FTS5 trigram index if this SQLite has it; otherwise grep falls back to LIKE."""
        try:
            self._conn.executescript(_FTS_SCHEMA)
        except sqlite3.OperationalError:
            return SEARCH_LIKE
        return SEARCH_FTS

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def ingest_file(self, path: Path, source_kind: str) -> int:
        """Store every complete new line of `path` (an `instance` or `router` log); return how many."""
        if source_kind not in SOURCES:
            raise UserError(
                f"log file {path}: unknown source {source_kind!r}; use one of {', '.join(SOURCES)}"
            )
        total = 0
        while True:
            added, more = self._ingest_chunk(path, source_kind)
            total += added
            if not more:
                return total

    def _ingest_chunk(self, path: Path, source_kind: str) -> tuple[int, bool]:
        """Ingest up to READ_CHUNK bytes of complete lines in one transaction; return (rows, more left)."""
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            return 0, False
        with f, self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                st = os.fstat(f.fileno())
                offset = self._resume_offset(f, str(path), st)
                f.seek(offset)
                data = f.read(READ_CHUNK)
                end = data.rfind(b"\n") + 1
                if end == 0 and len(data) == READ_CHUNK:
                    # A line longer than a whole chunk is stored in chunk-sized pieces rather than never.
                    end = len(data)
                if end == 0:
                    self._conn.execute("ROLLBACK")
                    return 0, False
                rows = self._parse(data[:end], source_kind)
                self._insert_rows(rows)
                f.seek(0)
                head = f.read(min(HEAD_BYTES, offset + end))
                self._save_offset(str(path), source_kind, _Position(st.st_ino, st.st_dev, offset + end, head))
                self._conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk); the first error is the one to raise.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return len(rows), len(data) == READ_CHUNK

    def _resume_offset(self, f: IO[bytes], path: str, st: os.stat_result) -> int:
        """The stored offset if it still belongs to this file, else 0 (rotated, replaced or truncated)."""
        row = self._conn.execute(
            "SELECT inode, device, offset, head FROM log_offsets WHERE path = ?", (path,)
        ).fetchone()
        if row is None:
            return 0
        saved = _Position(*row)
        if (saved.inode, saved.device) != (st.st_ino, st.st_dev) or st.st_size < saved.offset:
            return 0
        if f.read(len(saved.head)) != saved.head:
            return 0
        return saved.offset

    @staticmethod
    def _parse(data: bytes, source_kind: str) -> list[ParsedLine]:
        """Parse complete lines, skipping blank ones; undecodable bytes are replaced, never dropped."""
        now = time.time()
        text = data.decode("utf-8", errors="replace")
        return [parse_line(line, source_kind, now) for line in text.split("\n") if line.strip()]

    def _insert_rows(self, rows: list[ParsedLine]) -> None:
        self._conn.executemany(
            "INSERT INTO log_lines (ts, source, stream, instance, app, env, version, zone, msg) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.ts, r.source, r.stream, r.instance, r.app, r.env, r.version, r.zone, r.msg) for r in rows],
        )

    def _save_offset(self, path: str, source_kind: str, pos: _Position) -> None:
        self._conn.execute(
            "INSERT INTO log_offsets (path, source, inode, device, offset, head) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET source = excluded.source, inode = excluded.inode, "
            "device = excluded.device, offset = excluded.offset, head = excluded.head",
            (path, source_kind, pos.inode, pos.device, pos.offset, pos.head),
        )

    def prune_before(
        self, cutoff: float, app: str | None = None, env: str | None = None, *, batch: int = PRUNE_BATCH
    ) -> int:
        """Delete lines older than `cutoff` (of one app and env when given), `batch` at a time; how many."""
        clauses = ["ts < ?"]
        params: list[object] = [cutoff]
        for column, value in (("app", app), ("env", env)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = (
            "DELETE FROM log_lines WHERE id IN "
            f"(SELECT id FROM log_lines WHERE {' AND '.join(clauses)} LIMIT ?)"
        )
        total = 0
        while True:
            # One short transaction per batch: the ingester takes the lock between batches.
            with self._lock:
                deleted = self._conn.execute(sql, [*params, batch]).rowcount
            total += deleted
            if deleted < batch:
                return total

    def query(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        instance: str | None = None,
        version: str | None = None,
        app: str | None = None,
        env: str | None = None,
        source: str | None = None,
        grep: str | None = None,
        limit: int = DEFAULT_LIMIT,
        after_id: int | None = None,
    ) -> list[LogRow]:
        """Matching lines. With `after_id`: the first `limit` newer lines by id; else the last `limit` by time."""
        clauses: list[str] = []
        params: list[object] = []
        for column, op, value in (
            ("ts", ">=", since),
            ("ts", "<", until),
            ("instance", "=", instance),
            ("version", "=", version),
            ("app", "=", app),
            ("env", "=", env),
            ("source", "=", source),
            ("id", ">", after_id),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if grep:
            clauses.append(self._grep_clause(grep))
            params.append(self._grep_param(grep))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "id ASC" if after_id is not None else "ts DESC, id DESC"
        sql = f"SELECT {_COLUMNS} FROM log_lines {where} ORDER BY {order} LIMIT ?"
        with self._lock:
            rows = [LogRow(*r) for r in self._conn.execute(sql, [*params, limit])]
        return rows if after_id is not None else rows[::-1]

    def _uses_fts(self, grep: str) -> bool:
        return self.search_mode == SEARCH_FTS and len(grep) >= _MIN_FTS_PATTERN

    def _grep_clause(self, grep: str) -> str:
        if self._uses_fts(grep):
            return "id IN (SELECT rowid FROM log_fts WHERE log_fts MATCH ?)"
        return "msg LIKE ? ESCAPE '\\'"

    def _grep_param(self, grep: str) -> str:
        if self._uses_fts(grep):
            # One quoted phrase: the trigram index then matches it as a case-insensitive substring.
            return '"' + grep.replace('"', '""') + '"'
        escaped = grep.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"

    @contextlib.contextmanager
    def one_moment(self) -> Iterator[None]:
        """Reads inside see the store at one moment: no line is stored between them."""
        with self._lock:
            yield

    def last_id(self) -> int:
        """The id of the newest stored line (0 when empty)."""
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM log_lines").fetchone()
        return int(row[0])

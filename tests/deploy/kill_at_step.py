"""Kill the daemon with SIGKILL exactly at the boundary into one step of a release.

Steps chain within one daemon tick, so polling alone misses the short ones. Instead, temporary
triggers freeze every write to the state store once the newest release's persisted state is STEP:
the daemon's next write (the step's first effect, or its transition) spins inside its own
uncommitted transaction. Then the daemon is killed, its transaction dies with it, and the triggers
are dropped before anyone restarts it. So the daemon dies with STEP persisted and nothing of it done.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

GATE = "crash_gate"


def kill_at(db: Path, step: str, pid: int, start: Callable[[], None], timeout: float) -> int:
    """Arm the triggers, `start` a release, SIGKILL `pid` once that release is at `step`, disarm;
    the release's id."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        arm(conn, step)
        newest = int(conn.execute("SELECT coalesce(max(id), 0) FROM deployments").fetchone()[0])
        start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT id, state FROM deployments WHERE id > ? ORDER BY id DESC LIMIT 1", (newest,)
            ).fetchone()
            if row is not None and row[1] == step:
                os.kill(pid, signal.SIGKILL)
                while _state(pid) not in ("Z", "X"):
                    time.sleep(0.001)
                return int(row[0])
            time.sleep(0.002)
        raise AssertionError(f"no release reached {step} within {timeout:g}s")
    finally:
        disarm(conn)
        conn.close()


def arm(conn: sqlite3.Connection, step: str) -> None:
    """Triggers on every table: any write while the newest release is at `step` spins (until killed)."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(f"CREATE TABLE {GATE}_rows (n INTEGER)")
    conn.executemany(f"INSERT INTO {GATE}_rows VALUES (?)", [(n,) for n in range(3000)])
    for table in tables:
        for op in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TRIGGER {GATE}_{table}_{op.lower()} BEFORE {op} ON {table} "
                f"WHEN (SELECT state FROM deployments ORDER BY id DESC LIMIT 1) = '{step}' "
                f"BEGIN SELECT count(*) FROM {GATE}_rows a, {GATE}_rows b, {GATE}_rows c; END"
            )
    conn.execute("COMMIT")


def disarm(conn: sqlite3.Connection) -> None:
    """Drop the triggers and their table (the killed daemon's lock is gone with it)."""
    conn.execute("BEGIN IMMEDIATE")
    for (name,) in conn.execute(
        f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '{GATE}%'"
    ):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute(f"DROP TABLE IF EXISTS {GATE}_rows")
    conn.execute("COMMIT")


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"

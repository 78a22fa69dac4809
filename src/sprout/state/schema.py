"""The state store's SQLite schema as numbered migrations, applied in order up to `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: Busy timeout: how long a writer waits for another process's write transaction before failing.
BUSY_TIMEOUT_S = 5.0

_V1 = """
CREATE TABLE apps (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL REFERENCES apps(name),
    name TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    app_dir TEXT NOT NULL,
    current_version TEXT,
    desired_capacity INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (app, name)
);
CREATE TABLE versions (
    app TEXT NOT NULL REFERENCES apps(name),
    label TEXT NOT NULL,
    number INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    manifest_json TEXT NOT NULL,
    store_url TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (app, label),
    UNIQUE (app, sha256),
    UNIQUE (app, number)
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    version TEXT NOT NULL,
    zone TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    pid INTEGER,
    started_at REAL,
    state TEXT NOT NULL CHECK (state IN ('launching', 'running', 'draining', 'stopped', 'failed')),
    health TEXT NOT NULL CHECK (health IN ('unknown', 'healthy', 'unhealthy')),
    group_name TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX instances_by_env ON instances (app, env, state);
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    version TEXT NOT NULL,
    strategy TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT,
    reason TEXT,
    user TEXT NOT NULL,
    data_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX deployments_by_env ON deployments (app, env, id);
CREATE TABLE locks (
    env_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at REAL NOT NULL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    app TEXT,
    env TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_env ON events (app, env, time);
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    user TEXT NOT NULL,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    manifest_hash TEXT,
    version TEXT,
    diff_text TEXT NOT NULL
);
CREATE INDEX history_by_env ON history (app, env, id);
CREATE TRIGGER history_no_update BEFORE UPDATE ON history
BEGIN SELECT RAISE(ABORT, 'history is append-only: rows cannot be changed'); END;
CREATE TRIGGER history_no_delete BEFORE DELETE ON history
BEGIN SELECT RAISE(ABORT, 'history is append-only: rows cannot be deleted'); END;
"""

# Target groups: an environment's desired fleets (blue/green/canary), each a version with a capacity and a
# traffic weight; instances record when they stopped, for the bill.
_V2 = """
CREATE TABLE target_groups (
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    weight INTEGER NOT NULL CHECK (weight >= 0),
    standby_until REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (app, env, name)
);
ALTER TABLE instances ADD COLUMN stopped_at REAL;
"""

# Observed load per environment and UTC hour, kept by the autoscaler for `sprout cost --advise`.
_V3 = """
CREATE TABLE load_hours (
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    hour REAL NOT NULL,
    seconds INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    peak_rps REAL NOT NULL,
    p99 REAL NOT NULL,
    instance_seconds REAL NOT NULL,
    PRIMARY KEY (app, env, hour)
);
"""

# The source key of the manifest file each version was validated from (`sprout.spec.source`): a push of
# a byte-identical manifest reuses the validated form instead of loading the models.
_V4 = """
ALTER TABLE versions ADD COLUMN manifest_source TEXT;
CREATE INDEX versions_by_manifest_source ON versions (manifest_source);
"""

# The environment the router's default route serves (at most one), chosen by the user or the first `up`;
# it stays put when other environments come and go. An existing store keeps the newest, as before.
_V5 = """
ALTER TABLE environments ADD COLUMN default_route INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX environments_one_default_route ON environments (default_route) WHERE default_route = 1;
UPDATE environments SET default_route = 1
 WHERE id = (SELECT id FROM environments ORDER BY created_at DESC, id DESC LIMIT 1);
"""

# Which process holds a release lock (its pid and start, seconds since boot): a lock whose process ended
# before its release was recorded (a control plane killed during the test gate) is found and freed
# instead of refusing every later release of the environment.
_V6 = """
ALTER TABLE locks ADD COLUMN pid INTEGER;
ALTER TABLE locks ADD COLUMN since_boot REAL;
"""

#: Migration N (1-based) brings a database from user_version N-1 to N. Append; never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6)


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection in WAL mode with the busy timeout; rows read as `sqlite3.Row`."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable across application crashes in WAL mode; only a power loss may drop the last commit.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen yet, atomically; return the schema version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current >= len(MIGRATIONS):
        return int(current)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read inside the write lock: another process may have migrated meanwhile.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(current + 1, len(MIGRATIONS) + 1):
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their inner semicolons)."""
    statements: list[str] = []
    buffer = ""
    for line in script.strip().splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements

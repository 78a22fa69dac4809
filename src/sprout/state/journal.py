"""The state store's records of what happened: deployments, release locks, events and the audit history."""

from __future__ import annotations

import json
import time
from typing import Any

import psutil

from sprout.errors import NotFoundError
from sprout.process_start import since_boot
from sprout.state.database import Database, where_clause
from sprout.state.models import Deployment, Event, HistoryEntry, Lock

_DEPLOYMENT_FIELDS = frozenset({"state", "step", "finished_at", "outcome", "reason", "data"})


class Journal(Database):
    """Deployments, locks, events and history on top of the shared database."""

    # -- deployments -------------------------------------------------------------------------------

    def create_deployment(
        self,
        app: str,
        env: str,
        version: str,
        strategy: str,
        user: str,
        state: str = "pending",
        data: dict[str, Any] | None = None,
    ) -> Deployment:
        """Record a new deployment of `version` into `app/env`."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO deployments (app, env, version, strategy, state, step, started_at, user, data_json)"
                " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (app, env, version, strategy, state, time.time(), user, json.dumps(data or {})),
            )
            deployment_id = cursor.lastrowid
        assert deployment_id is not None
        return self.get_deployment(deployment_id)

    def update_deployment(self, deployment_id: int, **fields: Any) -> Deployment:
        """Change a deployment's state, step, outcome, reason, finish time or data."""
        unknown = set(fields) - _DEPLOYMENT_FIELDS
        if unknown:
            raise ValueError(f"update_deployment: unknown fields {sorted(unknown)}")
        if "data" in fields:
            fields["data_json"] = json.dumps(fields.pop("data"))
        if fields:
            assignments = ", ".join(f"{column} = ?" for column in fields)
            with self._write() as conn:
                conn.execute(
                    f"UPDATE deployments SET {assignments} WHERE id = ?", (*fields.values(), deployment_id)
                )
        return self.get_deployment(deployment_id)

    def get_deployment(self, deployment_id: int) -> Deployment:
        """One deployment by id."""
        rows = self._read("SELECT * FROM deployments WHERE id = ?", (deployment_id,))
        if not rows:
            raise NotFoundError(f"deployment {deployment_id}: no such deployment (see `sprout history`)")
        return Deployment.from_row(rows[0])

    def list_deployments(
        self, app: str | None = None, env: str | None = None, unfinished: bool = False, limit: int = 100
    ) -> list[Deployment]:
        """Deployments, oldest first (the last `limit`); only those without a finish time if `unfinished`."""
        where, params = where_clause(app=app, env=env)
        if unfinished:
            where += (" AND" if where else " WHERE") + " finished_at IS NULL"
        rows = self._read(
            f"SELECT * FROM (SELECT * FROM deployments{where} ORDER BY id DESC LIMIT ?) ORDER BY id",
            (*params, limit),
        )
        return [Deployment.from_row(row) for row in rows]

    def release_outcomes(self) -> list[tuple[str, str, str | None, int]]:
        """How many releases each environment had, by outcome (None: not finished yet)."""
        rows = self._read(
            "SELECT app, env, CASE WHEN finished_at IS NULL THEN NULL ELSE COALESCE(outcome, 'unknown') END"
            " AS result, COUNT(*) AS n FROM deployments GROUP BY app, env, result ORDER BY app, env, result"
        )
        return [(row["app"], row["env"], row["result"], row["n"]) for row in rows]

    # -- release locks -----------------------------------------------------------------------------

    def acquire_lock(self, env_id: str, holder: str) -> bool:
        """Take the lock of an environment for `holder` in this process; True if it now holds it
        (re-entrant)."""
        me = psutil.Process()
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO locks (env_id, holder, acquired_at, pid, since_boot)"
                " VALUES (?, ?, ?, ?, ?)",
                (env_id, holder, time.time(), me.pid, since_boot(me)),
            )
            row = conn.execute("SELECT holder FROM locks WHERE env_id = ?", (env_id,)).fetchone()
        return bool(row["holder"] == holder)

    def release_lock(self, env_id: str, holder: str) -> bool:
        """Release the lock if `holder` holds it; True if it did."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM locks WHERE env_id = ? AND holder = ?", (env_id, holder))
        return cursor.rowcount > 0

    def list_locks(self) -> list[Lock]:
        """Every release lock held, oldest first."""
        return [Lock.from_row(row) for row in self._read("SELECT * FROM locks ORDER BY acquired_at")]

    def drop_lock(self, lock: Lock) -> bool:
        """Remove this very lock (not a later one of the same environment); True if it did."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM locks WHERE env_id = ? AND holder = ? AND acquired_at = ?",
                (lock.env_id, lock.holder, lock.acquired_at),
            )
        return cursor.rowcount > 0

    def lock_holder(self, env_id: str) -> str | None:
        """Who holds an environment's lock, if anyone."""
        rows = self._read("SELECT holder FROM locks WHERE env_id = ?", (env_id,))
        return str(rows[0]["holder"]) if rows else None

    # -- events ------------------------------------------------------------------------------------

    def record_event(self, app: str | None, env: str | None, kind: str, message: str, **data: Any) -> Event:
        """Record one decision or observation of the control plane."""
        now = time.time()
        data_json = json.dumps(data, default=str)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO events (time, app, env, kind, message, data_json) VALUES (?, ?, ?, ?, ?, ?)",
                (now, app, env, kind, message, data_json),
            )
        assert cursor.lastrowid is not None
        return Event(cursor.lastrowid, now, app, env, kind, message, json.loads(data_json))

    def list_events(
        self,
        app: str | None = None,
        env: str | None = None,
        since: float | None = None,
        limit: int = 100,
        kind: str | None = None,
    ) -> list[Event]:
        """The last `limit` events (oldest first), optionally of one env, kind or after a time."""
        where, params = where_clause(app=app, env=env, kind=kind)
        if since is not None:
            where += (" AND" if where else " WHERE") + " time >= ?"
            params.append(since)
        rows = self._read(
            f"SELECT * FROM (SELECT * FROM events{where} ORDER BY id DESC LIMIT ?) ORDER BY id",
            (*params, limit),
        )
        return [Event.from_row(row) for row in rows]

    # -- audit history (append-only: triggers reject UPDATE and DELETE) ----------------------------

    def append_history(
        self,
        *,
        user: str,
        app: str,
        env: str,
        action: str,
        manifest_hash: str | None,
        version: str | None,
        diff_text: str,
    ) -> HistoryEntry:
        """Append one applied change to the audit history."""
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO history (time, user, app, env, action, manifest_hash, version, diff_text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, user, app, env, action, manifest_hash, version, diff_text),
            )
        assert cursor.lastrowid is not None
        return HistoryEntry(cursor.lastrowid, now, user, app, env, action, manifest_hash, version, diff_text)

    def list_history(self, app: str | None = None, env: str | None = None) -> list[HistoryEntry]:
        """The audit history, oldest first."""
        where, params = where_clause(app=app, env=env)
        return [
            HistoryEntry.from_row(row)
            for row in self._read(f"SELECT * FROM history{where} ORDER BY id", params)
        ]

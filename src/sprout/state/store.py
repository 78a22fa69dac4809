"""The state store: desired and recorded state of apps, environments, versions and instances.

One SQLite file (WAL, busy timeout 5 s) under SPROUT_HOME, shared by the CLI, the daemon and its
threads. Every write is one short `BEGIN IMMEDIATE` transaction, so concurrent writers from several
processes queue instead of losing updates. Records come back as frozen dataclasses (`state/models.py`).
Secrets are never stored: manifests are kept with their secret *references* only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sprout.errors import ConflictError, NotFoundError, UserError
from sprout.state.database import where_clause
from sprout.state.ids import new_instance_id
from sprout.state.journal import Journal
from sprout.state.models import (
    INSTANCE_HEALTH,
    INSTANCE_STATES,
    Environment,
    Group,
    Instance,
    InstanceHealth,
    InstanceState,
    LoadHour,
    Version,
)

if TYPE_CHECKING:
    # Only for annotations: reading records must not import the models (see sprout.spec.source).
    from sprout.spec import Manifest

_INSTANCE_FIELDS = frozenset(
    {"version", "zone", "host", "port", "pid", "started_at", "state", "health", "group_name"}
)


def env_id(app: str, env: str) -> str:
    """The id of an environment: `app/env`."""
    return f"{app}/{env}"


def recorded_environments(path: Path) -> list[str]:
    """`app/env` of every environment the state store at `path` records, sorted; none (and nothing
    created) when there is no store yet."""
    if not path.exists():
        return []
    store = StateStore(path)
    try:
        return sorted(env_id(e.app, e.name) for e in store.list_environments())
    finally:
        store.close()


def _manifest_json(manifest: Manifest | str) -> str:
    """A manifest as stored; a string is the stored form of one validated before."""
    if isinstance(manifest, str):
        return manifest
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True)


class StateStore(Journal):
    """Apps, environments, versions and instances (deployments, locks, events, history: `Journal`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)

    # -- apps and environments ---------------------------------------------------------------------

    def list_apps(self) -> list[str]:
        """Names of every app that has a version or an environment."""
        return [row["name"] for row in self._read("SELECT name FROM apps ORDER BY name")]

    def upsert_environment(self, app: str, env: str, manifest: Manifest, app_dir: Path) -> Environment:
        """Create an environment or replace its manifest; a new one starts at the manifest's capacity.

        With no environment serving the router's default route yet, this one takes it.
        """
        now = time.time()
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)", (app, now))
            conn.execute(
                "INSERT INTO environments (id, app, name, manifest_json, manifest_hash, app_dir, current_version,"
                " desired_capacity, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, 'created', ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET manifest_json = excluded.manifest_json,"
                " manifest_hash = excluded.manifest_hash, app_dir = excluded.app_dir, updated_at = excluded.updated_at",
                (
                    env_id(app, env),
                    app,
                    env,
                    _manifest_json(manifest),
                    manifest.digest(),
                    str(Path(app_dir).resolve()),
                    manifest.instances.initial,
                    now,
                    now,
                ),
            )
            conn.execute(
                "UPDATE environments SET default_route = 1 WHERE id = ?"
                " AND NOT EXISTS (SELECT 1 FROM environments WHERE default_route = 1)",
                (env_id(app, env),),
            )
        return self._environment(app, env)

    def set_default_route(self, app: str, env: str) -> Environment:
        """Make the router's default route serve this environment, and no other."""
        self._environment(app, env)
        with self._write() as conn:
            conn.execute("UPDATE environments SET default_route = 0 WHERE default_route = 1")
            conn.execute("UPDATE environments SET default_route = 1 WHERE id = ?", (env_id(app, env),))
        return self._environment(app, env)

    def get_environment(self, app: str, env: str) -> Environment | None:
        """An environment, or None if it was never applied."""
        rows = self._read("SELECT * FROM environments WHERE id = ?", (env_id(app, env),))
        return Environment.from_row(rows[0]) if rows else None

    def list_environments(self, app: str | None = None) -> list[Environment]:
        """Every environment (of one app), by id."""
        where, params = where_clause(app=app)
        return [
            Environment.from_row(r)
            for r in self._read(f"SELECT * FROM environments{where} ORDER BY id", params)
        ]

    def set_desired_capacity(self, app: str, env: str, n: int, reason: str) -> Environment:
        """Set how many instances an environment should run, recording why as a `capacity` event (if changed)."""
        if n < 0:
            raise UserError(f"{env_id(app, env)}: desired capacity must be 0 or more, got {n}")
        current = self._environment(app, env)
        old = current.desired_capacity
        if n == old:
            return current
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE environments SET desired_capacity = ?, updated_at = ? WHERE id = ?",
                (n, now, env_id(app, env)),
            )
            conn.execute(
                "INSERT INTO events (time, app, env, kind, message, data_json) VALUES (?, ?, ?, 'capacity', ?, ?)",
                (
                    now,
                    app,
                    env,
                    f"desired capacity {old} → {n}: {reason}",
                    json.dumps({"old": old, "new": n}),
                ),
            )
        return self._environment(app, env)

    def set_current_version(self, app: str, env: str, label: str | None) -> Environment:
        """Make `label` the version an environment runs (it must have been pushed)."""
        if label is not None and self.get_version(app, label) is None:
            raise NotFoundError(f"{app} {label}: no such version (push one with `sprout push`)")
        return self._update_environment(app, env, current_version=label)

    def set_environment_status(self, app: str, env: str, status: str) -> Environment:
        """Record an environment's lifecycle status (e.g. created, running, stopped)."""
        return self._update_environment(app, env, status=status)

    def delete_environment(self, app: str, env: str) -> None:
        """Forget an environment and its desired groups (its history stays)."""
        with self._write() as conn:
            conn.execute("DELETE FROM environments WHERE id = ?", (env_id(app, env),))
            conn.execute("DELETE FROM target_groups WHERE app = ? AND env = ?", (app, env))

    def _update_environment(self, app: str, env: str, **fields: Any) -> Environment:
        self._environment(app, env)
        assignments = ", ".join(f"{column} = ?" for column in fields)
        with self._write() as conn:
            conn.execute(
                f"UPDATE environments SET {assignments}, updated_at = ? WHERE id = ?",
                (*fields.values(), time.time(), env_id(app, env)),
            )
        return self._environment(app, env)

    def _environment(self, app: str, env: str) -> Environment:
        found = self.get_environment(app, env)
        if found is None:
            raise NotFoundError(f"{env_id(app, env)}: no such environment (create it with `sprout up`)")
        return found

    # -- versions ----------------------------------------------------------------------------------

    def add_version(
        self,
        app: str,
        sha256: str,
        size: int,
        manifest: Manifest | str,
        store_url: str | None = None,
        manifest_source: str | None = None,
        label: str | None = None,
    ) -> Version:
        """Record a pushed bundle as the app's next `vN`; identical content returns the existing version.

        `manifest` is the validated manifest or its stored JSON (`validated_manifest`); `manifest_source`
        is the `sprout.spec.source.source_key` of the file it was validated from, for later reuse;
        `label`: the `vN` another store gave the bundle, kept here (a provider's release store).
        """
        if label is not None and not re.fullmatch(r"v[1-9][0-9]*", label):
            raise UserError(f"version {label!r}: a version label is v1, v2, …")
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM versions WHERE app = ? AND sha256 = ?", (app, sha256)
            ).fetchone()
            if row is not None:
                return Version.from_row(row)
            now = time.time()
            conn.execute("INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)", (app, now))
            number = (
                int(label[1:])
                if label is not None
                else conn.execute(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE app = ?", (app,)
                ).fetchone()[0]
            )
            taken = conn.execute(
                "SELECT sha256 FROM versions WHERE app = ? AND number = ?", (app, number)
            ).fetchone()
            if taken is not None:
                raise ConflictError(f"{app} v{number}: already recorded for bundle {taken[0][:12]}")
            conn.execute(
                "INSERT INTO versions (app, label, number, sha256, size, manifest_json, store_url, created_at,"
                " manifest_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    app,
                    f"v{number}",
                    number,
                    sha256,
                    size,
                    _manifest_json(manifest),
                    store_url,
                    now,
                    manifest_source,
                ),
            )
            row = conn.execute(
                "SELECT * FROM versions WHERE app = ? AND number = ?", (app, number)
            ).fetchone()
        return Version.from_row(row)

    def get_version(self, app: str, label: str) -> Version | None:
        """A version by label (`v3`), or None."""
        rows = self._read("SELECT * FROM versions WHERE app = ? AND label = ?", (app, label))
        return Version.from_row(rows[0]) if rows else None

    def validated_manifest(self, manifest_source: str) -> str | None:
        """The stored JSON of a manifest validated from a file with this source key, or None."""
        rows = self._read(
            "SELECT manifest_json FROM versions WHERE manifest_source = ? ORDER BY created_at DESC LIMIT 1",
            (manifest_source,),
        )
        return str(rows[0]["manifest_json"]) if rows else None

    def version_by_sha(self, app: str, sha256: str) -> Version | None:
        """The version of an app with this bundle hash, or None."""
        rows = self._read("SELECT * FROM versions WHERE app = ? AND sha256 = ?", (app, sha256))
        return Version.from_row(rows[0]) if rows else None

    def list_versions(self, app: str) -> list[Version]:
        """Every version of an app, oldest first."""
        return [
            Version.from_row(r)
            for r in self._read("SELECT * FROM versions WHERE app = ? ORDER BY number", (app,))
        ]

    def latest_version(self, app: str) -> Version | None:
        """The most recently pushed version of an app, or None."""
        rows = self._read("SELECT * FROM versions WHERE app = ? ORDER BY number DESC LIMIT 1", (app,))
        return Version.from_row(rows[0]) if rows else None

    # -- instances ---------------------------------------------------------------------------------

    def add_instance(
        self,
        app: str,
        env: str,
        version: str,
        zone: str,
        host: str,
        port: int,
        *,
        instance_id: str | None = None,
        pid: int | None = None,
        started_at: float | None = None,
        state: InstanceState = "launching",
        health: InstanceHealth = "unknown",
        group_name: str | None = None,
    ) -> Instance:
        """Record a new instance (a fresh id unless `instance_id` is given)."""
        _check_instance_values(state=state, health=health)
        now = time.time()
        instance = Instance(
            id=instance_id or new_instance_id(),
            app=app,
            env=env,
            version=version,
            zone=zone,
            host=host,
            port=port,
            pid=pid,
            started_at=started_at,
            state=state,
            health=health,
            group_name=group_name,
            created_at=now,
            updated_at=now,
        )
        values = instance.__dict__
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO instances ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )
        return instance

    def update_instance(self, instance_id: str, **fields: Any) -> Instance:
        """Change recorded fields of an instance (state, health, pid, started_at, port, …)."""
        unknown = set(fields) - _INSTANCE_FIELDS
        if unknown:
            raise ValueError(f"update_instance: unknown fields {sorted(unknown)}")
        _check_instance_values(**fields)
        if fields:
            now = time.time()
            assignments = ", ".join(f"{column} = ?" for column in fields)
            values = list(fields.values())
            if fields.get("state") in ("stopped", "failed"):
                # The first time an instance ends is when its lifetime (and its bill) ends.
                assignments += ", stopped_at = COALESCE(stopped_at, ?)"
                values.append(now)
            with self._write() as conn:
                conn.execute(
                    f"UPDATE instances SET {assignments}, updated_at = ? WHERE id = ?",
                    (*values, now, instance_id),
                )
        found = self.get_instance(instance_id)
        if found is None:
            raise NotFoundError(f"instance {instance_id}: no such instance (see `sprout status`)")
        return found

    # -- target groups: the desired fleets of an environment ----------------------------------------

    def list_groups(self, app: str, env: str) -> list[Group]:
        """An environment's desired target groups, by name."""
        rows = self._read("SELECT * FROM target_groups WHERE app = ? AND env = ? ORDER BY name", (app, env))
        return [Group.from_row(row) for row in rows]

    def put_group(self, app: str, env: str, group: Group) -> Group:
        """Create or replace one desired target group."""
        if group.capacity < 0 or group.weight < 0:
            raise UserError(f"{app}/{env} group {group.name}: capacity and weight cannot be negative")
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO target_groups"
                " (app, env, name, version, capacity, weight, standby_until, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    app,
                    env,
                    group.name,
                    group.version,
                    group.capacity,
                    group.weight,
                    group.standby_until,
                    time.time(),
                ),
            )
        return group

    def delete_group(self, app: str, env: str, name: str) -> None:
        """Forget a desired target group (its instances are then surplus and drained)."""
        with self._write() as conn:
            conn.execute("DELETE FROM target_groups WHERE app = ? AND env = ? AND name = ?", (app, env, name))

    # -- observed load per hour ------------------------------------------------------------------

    def add_load(self, load: LoadHour) -> None:
        """Add seconds of observed load to their hour: sums add up, the peak keeps the highest, the p99
        (computed by the caller over everything it saw of the hour) replaces the earlier estimate."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO load_hours (app, env, hour, seconds, requests, peak_rps, p99, instance_seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app, env, hour) DO UPDATE SET"
                " seconds = seconds + excluded.seconds, requests = requests + excluded.requests,"
                " peak_rps = MAX(peak_rps, excluded.peak_rps), p99 = excluded.p99,"
                " instance_seconds = instance_seconds + excluded.instance_seconds",
                (
                    load.app,
                    load.env,
                    load.hour,
                    load.seconds,
                    load.requests,
                    load.peak_rps,
                    load.p99,
                    load.instance_seconds,
                ),
            )

    def list_load(
        self, app: str | None = None, env: str | None = None, since: float | None = None
    ) -> list[LoadHour]:
        """Observed load hours, oldest first."""
        where, params = where_clause(app=app, env=env)
        if since is not None:
            where += (" AND" if where else " WHERE") + " hour >= ?"
            params.append(since)
        rows = self._read(f"SELECT * FROM load_hours{where} ORDER BY hour, app, env", params)
        return [LoadHour.from_row(row) for row in rows]

    def get_instance(self, instance_id: str) -> Instance | None:
        """An instance by id, or None."""
        rows = self._read("SELECT * FROM instances WHERE id = ?", (instance_id,))
        return Instance.from_row(rows[0]) if rows else None

    def list_instances(
        self, app: str | None = None, env: str | None = None, states: Iterable[str] | None = None
    ) -> list[Instance]:
        """Instances (of one app/env, in some states), oldest first."""
        where, params = where_clause(app=app, env=env)
        if states is not None:
            wanted = list(states)
            where += (" AND" if where else " WHERE") + f" state IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        rows = self._read(f"SELECT * FROM instances{where} ORDER BY created_at, id", params)
        return [Instance.from_row(row) for row in rows]


def _check_instance_values(**fields: Any) -> None:
    if "state" in fields and fields["state"] not in INSTANCE_STATES:
        raise ValueError(f"instance state {fields['state']!r} is not one of {sorted(INSTANCE_STATES)}")
    if "health" in fields and fields["health"] not in INSTANCE_HEALTH:
        raise ValueError(f"instance health {fields['health']!r} is not one of {sorted(INSTANCE_HEALTH)}")

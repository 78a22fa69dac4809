"""The planner: desired state (manifest, version) against recorded and observed state → a Plan.

A pure function of its inputs. It never reads files or the state store; `plan/apply.py` gathers
the inputs. Settings changes, the version, fleet size per zone, routes and managed resources each
become their own actions; when nothing differs the plan is a single `Noop` that says why.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sprout.plan.actions import (
    Action,
    CreateEnvironment,
    Noop,
    SetCapacity,
    SetVersion,
    StartResource,
    StopResource,
    UpdateRoutes,
    UpdateSettings,
)
from sprout.plan.settings import UNSET, flat_settings
from sprout.spec import Manifest
from sprout.spec.rules import served_hosts
from sprout.state.models import LIVE_STATES, Environment, Group, Instance, Version


@dataclass(frozen=True)
class Plan:
    """What applying a manifest to an environment would change: inert data, ordered actions."""

    app: str
    env: str
    manifest: Manifest
    app_dir: Path
    desired_capacity: int
    actions: tuple[Action, ...]
    #: What the plan leaves alone on purpose, for people (a warm fleet kept for rollback).
    notes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when applying would change nothing."""
        return all(isinstance(action, Noop) for action in self.actions)

    @property
    def kind(self) -> str:
        """`create`, `update` or `none`: the word the audit history records."""
        if self.is_empty:
            return "none"
        return "create" if any(isinstance(a, CreateEnvironment) for a in self.actions) else "update"

    def describe(self) -> list[str]:
        """The readable diff: one line per action (`~ health.interval: 2s → 1s`)."""
        return [action.describe() for action in self.actions]


def plan(
    manifest: Manifest,
    app_dir: Path,
    env: str,
    current: Environment | None,
    observed: Sequence[Instance],
    version: Version | None,
    warm: Sequence[Group] = (),
) -> Plan:
    """Compare what the manifest asks for with what is recorded and running; list what would change.

    A warm fleet (a group kept at weight 0 for an instant rollback until its window ends) is not part
    of the desired fleet: its instances are not counted, and the release loop retires it when due.
    """
    app = manifest.app.name
    kept = {group.name for group in warm}
    observed = [i for i in observed if i.group_name not in kept]
    desired = desired_capacity(manifest, current)
    actions: list[Action] = []
    # The names the environment answers (`staging.shop.localhost` for staging), as `status` shows them.
    old_hosts = tuple(served_hosts(env, current.manifest.hosts)) if current else ()
    new_hosts = tuple(served_hosts(env, manifest.hosts))
    routes = [UpdateRoutes(old_hosts, new_hosts)] if old_hosts != new_hosts else []
    if current is None:
        actions.append(CreateEnvironment(app, env))
    else:
        # Host changes read better as a routes change; a spelling-only change stays a setting.
        skip = {"router.hosts"} if routes else set()
        actions.extend(c for c in settings_changes(current.manifest, manifest) if c.field not in skip)
    if version is not None and (current is None or current.current_version != version.label):
        actions.append(SetVersion(current.current_version if current else None, version.label))
    actions.extend(_capacity_changes(manifest.instances.zones, desired, observed))
    actions.extend(routes)
    actions.extend(_resource_changes(current.manifest if current else None, manifest))
    if not actions:
        assert current is not None
        actions.append(Noop(_unchanged_reason(current, manifest, desired)))
    notes = [_warm_note(g) for g in warm]
    new_version = next((a.new for a in actions if isinstance(a, SetVersion)), None)
    if new_version is not None and manifest.app.release:
        notes.append(
            f"release command `{manifest.app.release}` runs once for {new_version} before it takes traffic"
        )
    if current is None or current.manifest.resources != manifest.resources:
        notes.extend(resource_notes(manifest))
    return Plan(app, env, manifest, app_dir, desired, tuple(actions), tuple(notes))


def resource_notes(manifest: Manifest) -> list[str]:
    """The environment's database and session store, as people read them: what Sprout creates, what is
    reached by URL."""
    database, sessions = manifest.resources.database, manifest.resources.sessions
    zones = ", ".join(manifest.instances.zones)
    if database.url:
        db = f"database: {database.engine} at {database.url}, external"
    else:
        db = "database: SQLite file database.sqlite3 of this environment, created on first use"
    if sessions.url:
        store = f"sessions: {sessions.engine} at {sessions.url}, external"
    elif sessions.engine == "memcached":
        store = f"sessions: memcached, one node in each of zones {zones}, started by Sprout"
    else:
        store = "sessions: SQLite file sessions.sqlite3 of this environment, created on first use"
    return [db, store]


def desired_capacity(manifest: Manifest, current: Environment | None) -> int:
    """The fleet size to ask for: the manifest's initial size for a new environment, else the recorded
    size (the scaler may have moved it) kept within the manifest's bounds; a changed `desired` wins."""
    bounds = manifest.instances
    if current is None:
        return bounds.initial
    if bounds.desired is not None and bounds.desired != current.manifest.instances.desired:
        return bounds.desired
    return min(max(current.desired_capacity, bounds.min), bounds.max)


def spread(total: int, zones: Sequence[str]) -> dict[str, int]:
    """`total` instances spread evenly across zones, the first zones taking the remainder."""
    share, extra = divmod(total, len(zones))
    return {zone: share + (1 if index < extra else 0) for index, zone in enumerate(zones)}


def settings_changes(old: Manifest, new: Manifest) -> list[UpdateSettings]:
    """Every manifest setting that differs between two manifests, by field path."""
    before, after = flat_settings(old), flat_settings(new)
    # A key set on neither side (a new secret's other source, say) is no change for people.
    quiet = {None, UNSET}
    return [
        UpdateSettings(path, before.get(path), after.get(path))
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path) and not {before.get(path), after.get(path)} <= quiet
    ]


def _capacity_changes(zones: Sequence[str], desired: int, observed: Sequence[Instance]) -> list[SetCapacity]:
    running = Counter(i.zone for i in observed if i.state in LIVE_STATES)
    wanted = spread(desired, zones)
    changes = [SetCapacity(zone, running[zone], n) for zone, n in wanted.items() if running[zone] != n]
    changes += [SetCapacity(zone, n, 0) for zone, n in sorted(running.items()) if zone not in wanted and n]
    return changes


def managed_resources(manifest: Manifest | None) -> set[tuple[str, str]]:
    """The backing-service nodes Sprout runs itself for a manifest, as (kind, zone) pairs."""
    if manifest is None:
        return set()
    sessions = manifest.resources.sessions
    if sessions.engine == "memcached" and sessions.url is None:
        return {("memcached", zone) for zone in manifest.instances.zones}
    return set()


def _resource_changes(old: Manifest | None, new: Manifest) -> list[Action]:
    before, after = managed_resources(old), managed_resources(new)
    zones = list(dict.fromkeys([*new.instances.zones, *(old.instances.zones if old else [])]))
    order = {zone: index for index, zone in enumerate(zones)}

    def key(item: tuple[str, str]) -> tuple[str, int]:
        return item[0], order[item[1]]

    started: list[Action] = [StartResource(kind, zone) for kind, zone in sorted(after - before, key=key)]
    stopped: list[Action] = [StopResource(kind, zone) for kind, zone in sorted(before - after, key=key)]
    return started + stopped


def _warm_note(group: Group) -> str:
    until = time.strftime("%H:%M:%S", time.localtime(group.standby_until or 0.0))
    return (
        f"warm fleet {group.name}: {group.capacity} instance(s) of {group.version} kept for rollback "
        f"until {until}, then retired (not counted above)"
    )


def _unchanged_reason(current: Environment, manifest: Manifest, desired: int) -> str:
    version = current.current_version or "no version yet"
    zones = ", ".join(manifest.instances.zones)
    return (
        f"{current.id} already matches {manifest.app.name}'s manifest "
        f"(manifest {manifest.digest()[:12]}, {version}, {desired} instances across zones {zones})"
    )

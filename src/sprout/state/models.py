"""The state store's records as frozen dataclasses; times are Unix seconds (float, UTC)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import psutil

from sprout.process_start import Start, running

if TYPE_CHECKING:
    from sprout.spec import Manifest

InstanceState = Literal["launching", "running", "draining", "stopped", "failed"]
InstanceHealth = Literal["unknown", "healthy", "unhealthy"]
INSTANCE_STATES: frozenset[str] = frozenset(get_args(InstanceState))
INSTANCE_HEALTH: frozenset[str] = frozenset(get_args(InstanceHealth))
#: States in which an instance counts towards the fleet.
LIVE_STATES: tuple[InstanceState, ...] = ("launching", "running")


def _json(text: str | None) -> dict[str, Any]:
    return dict(json.loads(text)) if text else {}


@dataclass(frozen=True)
class Environment:
    """One environment of an app (`microsite/production`): its desired settings and capacity."""

    id: str
    app: str
    name: str
    manifest_json: str
    manifest_hash: str
    app_dir: Path
    current_version: str | None
    desired_capacity: int
    status: str
    created_at: float
    updated_at: float
    #: The router's default route (requests for no known host) serves this environment.
    default_route: bool = False

    @cached_property
    def manifest(self) -> Manifest:
        """The manifest last applied to this environment (secret references only)."""
        from sprout.spec import parse_manifest

        return parse_manifest(json.loads(self.manifest_json), source=f"state of {self.id}", stored=True)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Environment:
        """The record from its `environments` row."""
        return cls(
            id=row["id"],
            app=row["app"],
            name=row["name"],
            manifest_json=row["manifest_json"],
            manifest_hash=row["manifest_hash"],
            app_dir=Path(row["app_dir"]),
            current_version=row["current_version"],
            desired_capacity=row["desired_capacity"],
            status=row["status"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            default_route=bool(row["default_route"]),
        )


@dataclass(frozen=True)
class Version:
    """A pushed version bundle of an app: label `vN`, addressed by its sha256."""

    app: str
    label: str
    sha256: str
    size: int
    manifest_json: str
    store_url: str | None
    created_at: float

    @property
    def number(self) -> int:
        """The N of `vN`."""
        return int(self.label[1:])

    @cached_property
    def manifest(self) -> Manifest:
        """The manifest packed with this version."""
        from sprout.spec import parse_manifest

        return parse_manifest(
            json.loads(self.manifest_json), source=f"version {self.app} {self.label}", stored=True
        )

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Version:
        """The record from its `versions` row."""
        return cls(
            app=row["app"],
            label=row["label"],
            sha256=row["sha256"],
            size=row["size"],
            manifest_json=row["manifest_json"],
            store_url=row["store_url"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True)
class Instance:
    """One instance (a `sprout agent` and its app process) as the control plane last recorded it."""

    id: str
    app: str
    env: str
    version: str
    zone: str
    host: str
    port: int
    pid: int | None
    started_at: float | None
    state: InstanceState
    health: InstanceHealth
    group_name: str | None
    created_at: float
    updated_at: float
    stopped_at: float | None = None

    @property
    def address(self) -> str:
        """`host:port` where the app listens."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Instance:
        """The record from its `instances` row."""
        return cls(**{key: row[key] for key in row.keys()})  # noqa: SIM118 - sqlite3.Row is not a Mapping


@dataclass(frozen=True)
class Group:
    """A desired target group of one environment: a version, a capacity and a traffic weight.

    A group with `standby_until` is a warm fleet kept after a release for an instant rollback.
    """

    name: str
    version: str
    capacity: int
    weight: int
    standby_until: float | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Group:
        """The record from its `target_groups` row."""
        return cls(row["name"], row["version"], row["capacity"], row["weight"], row["standby_until"])


@dataclass(frozen=True)
class LoadHour:
    """One UTC hour of an environment's observed load (as far as the autoscaler saw it)."""

    app: str
    env: str
    hour: float
    seconds: int
    requests: int
    peak_rps: float
    p99: float
    instance_seconds: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> LoadHour:
        """The record from its `load_hours` row."""
        return cls(**{key: row[key] for key in row.keys()})  # noqa: SIM118


@dataclass(frozen=True)
class Deployment:
    """A release of a version into an environment: a persistent, resumable state machine's record."""

    id: int
    app: str
    env: str
    version: str
    strategy: str
    state: str
    step: int
    started_at: float
    finished_at: float | None
    outcome: str | None
    reason: str | None
    user: str
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Deployment:
        """The record from its `deployments` row."""
        values = {key: row[key] for key in row.keys() if key != "data_json"}  # noqa: SIM118
        return cls(**values, data=_json(row["data_json"]))


@dataclass(frozen=True)
class Lock:
    """An environment's release lock: who holds it, since when, and the process that took it (its pid
    and start in seconds since boot; None in locks taken before they were recorded)."""

    env_id: str
    holder: str
    acquired_at: float
    pid: int | None
    since_boot: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Lock:
        """The record from its `locks` row."""
        return cls(**{key: row[key] for key in row.keys()})  # noqa: SIM118

    def process_alive(self) -> bool:
        """Whether the process that took the lock still runs (not merely a process with its pid)."""
        if self.pid is None or self.since_boot is None:
            return False
        try:
            proc = psutil.Process(self.pid)
            return Start(at=0.0, since_boot=self.since_boot).matches(proc) and running(self.pid)
        except psutil.Error:
            return False


@dataclass(frozen=True)
class Event:
    """Something the control plane decided or observed (launch, replace, scale, health change)."""

    id: int
    time: float
    app: str | None
    env: str | None
    kind: str
    message: str
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Event:
        """The record from its `events` row."""
        values = {key: row[key] for key in row.keys() if key != "data_json"}  # noqa: SIM118
        return cls(**values, data=_json(row["data_json"]))


@dataclass(frozen=True)
class HistoryEntry:
    """One applied change in the append-only audit history: who, when, what, and the plan's diff."""

    id: int
    time: float
    user: str
    app: str
    env: str
    action: str
    manifest_hash: str | None
    version: str | None
    diff_text: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> HistoryEntry:
        """The record from its `history` row."""
        return cls(**{key: row[key] for key in row.keys()})  # noqa: SIM118

"""The actions a plan is made of: inert, frozen data that an executor displays or applies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CreateEnvironment:
    """A new environment: first apply of this app in this environment."""

    app: str
    env: str

    def describe(self) -> str:
        """One diff line."""
        return f"+ environment {self.app}/{self.env}"


@dataclass(frozen=True)
class UpdateSettings:
    """A manifest setting changes; values are display strings, None when the key is absent."""

    field: str
    old: str | None
    new: str | None

    def describe(self) -> str:
        """One diff line."""
        if self.old is None:
            return f"+ {self.field} = {self.new}"
        if self.new is None:
            return f"- {self.field} (was {self.old})"
        return f"~ {self.field}: {self.old} → {self.new}"


@dataclass(frozen=True)
class SetVersion:
    """The environment runs another version (`old` is None for the first one)."""

    old: str | None
    new: str

    def describe(self) -> str:
        """One diff line."""
        return f"+ version: {self.new}" if self.old is None else f"~ version: {self.old} → {self.new}"


@dataclass(frozen=True)
class SetCapacity:
    """The number of instances in one zone changes from what runs now to what is desired."""

    zone: str
    old: int
    new: int

    def describe(self) -> str:
        """One diff line."""
        sign = "+" if self.new > self.old else "-"
        return f"{sign} instances in zone {self.zone}: {self.old} → {self.new}"


@dataclass(frozen=True)
class UpdateRoutes:
    """The router's host names for the environment change (`hosts_old` empty for a new one)."""

    hosts_old: tuple[str, ...]
    hosts_new: tuple[str, ...]

    def describe(self) -> str:
        """One diff line."""
        if not self.hosts_old:
            return f"+ routes: {', '.join(self.hosts_new)}"
        return f"~ routes: {', '.join(self.hosts_old)} → {', '.join(self.hosts_new)}"


@dataclass(frozen=True)
class StartResource:
    """A managed backing service node (e.g. a memcached session node) starts in a zone."""

    kind: str
    zone: str

    def describe(self) -> str:
        """One diff line."""
        return f"+ {self.kind} node in zone {self.zone}"


@dataclass(frozen=True)
class StopResource:
    """A managed backing service node stops (its zone or the resource left the manifest)."""

    kind: str
    zone: str

    def describe(self) -> str:
        """One diff line."""
        return f"- {self.kind} node in zone {self.zone}"


@dataclass(frozen=True)
class Noop:
    """Nothing to do, and why."""

    reason: str

    def describe(self) -> str:
        """One diff line."""
        return f"no changes: {self.reason}"


Action = (
    CreateEnvironment
    | UpdateSettings
    | SetVersion
    | SetCapacity
    | UpdateRoutes
    | StartResource
    | StopResource
    | Noop
)

"""The routing table: its JSON model, validation, host matching and atomic persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sprout.errors import NotFoundError, UserError
from sprout.paths import write_private
from sprout.spec.rules import host_key, repeated_hosts


class HealthSpec(BaseModel):
    """Active health check of every target in a route."""

    model_config = ConfigDict(extra="forbid")

    path: str = "/healthz"
    interval: float = Field(2.0, gt=0)
    timeout: float = Field(1.0, gt=0)
    healthy_threshold: int = Field(2, ge=1)
    unhealthy_threshold: int = Field(3, ge=1)
    expected_status: tuple[int, int] = (200, 399)

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value


class TargetSpec(BaseModel):
    """One app instance reachable at host:port."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    address: str
    zone: str = ""
    version: str = ""
    healthy: bool = False

    @field_validator("address")
    @classmethod
    def _address_is_host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port")
        return value

    def host_port(self) -> tuple[str, int]:
        """The address split into host and port."""
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


class GroupSpec(BaseModel):
    """A weighted set of targets (blue, green, canary)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    weight: int = Field(100, ge=0)
    version: str = ""
    targets: list[TargetSpec] = []


class RouteSpec(BaseModel):
    """An environment: the hosts it answers and its target groups."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    hosts: list[str] = []
    default: bool = False
    cache: bool = False
    max_body: int = Field(10 * 1024 * 1024, ge=0)
    drain_timeout: float = Field(30.0, ge=0)
    hsts: int = Field(0, ge=0)
    health: HealthSpec = HealthSpec()
    groups: list[GroupSpec] = []

    @field_validator("hosts")
    @classmethod
    def _hosts_are_lowercase(cls, value: list[str]) -> list[str]:
        for host in repeated_hosts(value):
            raise ValueError(f"host {host!r} is listed more than once")
        return [host_key(h) for h in value]

    @model_validator(mode="after")
    def _names_unique(self) -> RouteSpec:
        names = [g.name for g in self.groups]
        if len(names) != len(set(names)):
            raise ValueError(f"route {self.name!r} has duplicate group names")
        ids = [t.id for g in self.groups for t in g.targets]
        if len(ids) != len(set(ids)):
            raise ValueError(f"route {self.name!r} has duplicate target ids")
        return self


class TableSpec(BaseModel):
    """The whole routing table; replaced atomically."""

    model_config = ConfigDict(extra="forbid")

    routes: list[RouteSpec] = []

    @model_validator(mode="after")
    def _names_unique(self) -> TableSpec:
        seen_routes: set[str] = set()
        seen_targets: set[str] = set()
        seen_hosts: set[str] = set()
        defaults = 0
        for route in self.routes:
            if route.name in seen_routes:
                raise ValueError(f"duplicate route name {route.name!r}")
            seen_routes.add(route.name)
            defaults += route.default
            for host in route.hosts:
                if host in seen_hosts:
                    raise ValueError(f"host {host!r} is claimed by more than one route")
                seen_hosts.add(host)
            for group in route.groups:
                for target in group.targets:
                    if target.id in seen_targets:
                        raise ValueError(f"duplicate target id {target.id!r}")
                    seen_targets.add(target.id)
        if defaults > 1:
            raise ValueError("more than one route is marked default")
        return self


def parse_table(data: Any) -> TableSpec:
    """Validate a table document; raise UserError naming every bad field."""
    try:
        return TableSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'table'}: {err['msg']}" for err in exc.errors()
        )
        raise UserError(f"routing table: invalid ({problems}); fix the table and send it again") from exc


def table_to_dict(table: TableSpec) -> dict[str, Any]:
    """The table as the JSON document of the admin API and the state file."""
    return table.model_dump(mode="json")


def host_name(raw: bytes) -> str:
    """A Host header value as a lower-case name without port or trailing dot."""
    name = raw.decode("latin-1").strip().lower()
    if name.startswith("["):
        return name[: name.find("]") + 1]
    return (name.rpartition(":")[0] if ":" in name else name).rstrip(".")


class HostMatcher:
    """Host header → route name: exact names first, then the longest `*.suffix`, then the default."""

    def __init__(self, table: TableSpec) -> None:
        self._exact: dict[str, str] = {}
        wildcards: list[tuple[str, str]] = []
        self._default: str | None = None
        for route in table.routes:
            if route.default:
                self._default = route.name
            for host in route.hosts:
                if host.startswith("*."):
                    wildcards.append((host[1:], route.name))
                else:
                    self._exact[host] = route.name
        self._wildcards = sorted(wildcards, key=lambda w: len(w[0]), reverse=True)

    def match(self, host: str) -> str | None:
        """The route name serving `host` (already lower-cased, port removed), or None."""
        name = self._exact.get(host)
        if name is not None:
            return name
        for suffix, route in self._wildcards:
            if host.endswith(suffix):
                return route
        return self._default


def with_weights(table: TableSpec, route_name: str, weights: dict[str, int]) -> TableSpec:
    """`table` with group weights of one route changed; NotFoundError/UserError naming what is wrong."""
    rspec = next((r for r in table.routes if r.name == route_name), None)
    if rspec is None:
        raise NotFoundError(f"route {route_name!r}: no such route; GET /table lists the routes")
    names = {g.name for g in rspec.groups}
    unknown = sorted(set(weights) - names)
    if unknown:
        raise UserError(f"route {route_name!r}: unknown groups {unknown}; its groups are {sorted(names)}")
    if any(not isinstance(w, int) or isinstance(w, bool) or w < 0 for w in weights.values()):
        raise UserError(f"route {route_name!r}: weights must be integers >= 0")
    groups = [g.model_copy(update={"weight": weights.get(g.name, g.weight)}) for g in rspec.groups]
    new_route = rspec.model_copy(update={"groups": groups})
    return TableSpec(routes=[new_route if r.name == route_name else r for r in table.routes])


def save_table(path: Path, table: TableSpec) -> None:
    """Persist the table atomically: write a sibling temp file, fsync, rename over the old one."""
    write_private(path, json.dumps(table_to_dict(table), indent=2, sort_keys=True).encode())


def load_table(path: Path) -> TableSpec:
    """The persisted table, or an empty one when the file does not exist yet."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return TableSpec()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: state file is not JSON ({exc}); restore it or delete it to start empty"
        ) from exc
    return parse_table(data)

"""`HaproxyAdmin`: the router client interface of the control plane, served by HAProxy's runtime API.

Each route (environment) owns one backend slot of the static config; its groups' targets are dynamic
servers of that backend whose weights give each group its share. Hosts, the default route, health paths,
body limits and each target's group, version and zone are runtime maps. A target that leaves the table
is put in `drain` and deleted once its last request ended or its route's drain deadline passed; that
progress is advanced by every call (the control plane polls `target` while it retires an instance).
"""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_left
from typing import Any

from sprout.errors import NotFoundError, ServiceError
from sprout.router.admission import Rejection, admit_table
from sprout.router.client import RouterControl
from sprout.router.haproxy.config import SLOTS, Layout, slot_names
from sprout.router.haproxy.runtime import RuntimeApi, unsendable
from sprout.router.metrics import BUCKETS, Reading, Stats, exposition
from sprout.router.table import (
    RouteSpec,
    TableSpec,
    load_table,
    save_table,
    table_to_dict,
    with_weights,
)

#: Server names HAProxy accepts (a target id becomes one).
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
#: HAProxy's largest server weight: the biggest per-target share is scaled to it.
_MAX_WEIGHT = 256
#: Errors (5xx, refused or broken connections) in a row that take a target out before its next check.
ERROR_LIMIT = 5
_RECENT_DRAINED = 1000


class HaproxyAdmin(RouterControl):
    """The routing table applied to one HAProxy through its runtime API (no reload, ever)."""

    def __init__(self, layout: Layout, timeout: float = 10.0) -> None:
        self.layout = layout
        self.base_url = f"unix:{layout.socket}"
        self.api = RuntimeApi(layout.socket, timeout)
        self._lock = threading.RLock()
        self._spec = load_table(layout.table)
        #: Target id → monotonic deadline of its drain.
        self._drains: dict[str, float] = {}
        self._drained: dict[str, dict[str, Any]] = {}
        #: Targets seen up since they were added: only those are `unhealthy` when down, others `adding`.
        self._seen_up: set[str] = set()
        #: Cumulative counters per target and per (route, group), fed by the deltas of `show stat`.
        self._seen: dict[tuple[str, str], tuple[int, ...]] = {}
        self._target_stats: dict[str, Stats] = {}
        self._group_stats: dict[tuple[str, str], Stats] = {}
        self._started = time.time()

    def close(self) -> None:
        """Nothing to close: every command uses its own connection."""

    # -- the table ------------------------------------------------------------------------------------
    def get_table(self) -> dict[str, Any]:
        with self._lock:
            return table_to_dict(self._spec)

    def put_table(self, table: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            spec, rejected = admit_table(table, self._spec)
            spec, refused = self._fit(spec)
            self.apply(spec)
            return {**table_to_dict(self._spec), "rejected": [r.to_json() for r in [*rejected, *refused]]}

    def set_weights(self, route: str, weights: dict[str, int]) -> dict[str, Any]:
        with self._lock:
            self.apply(with_weights(self._spec, route, weights))
            return table_to_dict(self._spec)

    def drain(self, target_id: str, timeout: float | None = None) -> dict[str, Any]:
        with self._lock:
            if not any(t.id == target_id for r in self._spec.routes for g in r.groups for t in g.targets):
                return self.target(target_id)
            routes = [
                r.model_copy(
                    update={
                        "groups": [
                            g.model_copy(update={"targets": [t for t in g.targets if t.id != target_id]})
                            for g in r.groups
                        ]
                    }
                )
                for r in self._spec.routes
            ]
            self.apply(TableSpec(routes=routes), {target_id: timeout} if timeout is not None else None)
            return self.target(target_id)

    def _fit(self, spec: TableSpec) -> tuple[TableSpec, list[Rejection]]:
        """Routes beyond the slot pool or with target ids HAProxy cannot name are refused (previous kept)."""
        previous = {r.name: r for r in self._spec.routes}
        kept: list[RouteSpec] = []
        refused: list[Rejection] = []
        for route in spec.routes:
            bad = [t.id for g in route.groups for t in g.targets if not _SERVER_NAME.match(t.id)]
            why = _unsendable(route)
            if bad:
                why = f"target id {bad[0]!r}: the HAProxy engine takes letters, digits and . _ : - only"
            elif len(kept) >= SLOTS:
                why = f"the HAProxy engine serves at most {SLOTS} routes; use the sprout engine for more"
            if why is None:
                kept.append(route)
                continue
            refused.append(Rejection(route.name, why))
            if route.name in previous and len(kept) < SLOTS:
                kept.append(previous[route.name])
        return TableSpec(routes=kept), refused

    def apply(
        self, spec: TableSpec, drain_timeouts: dict[str, float] | None = None, restored: bool = False
    ) -> None:
        """Make HAProxy serve `spec`: servers added and weighted, maps set, the departed drained.

        `restored` marks the saved table applied to a new HAProxy: its targets were serving before, so
        they start up rather than waiting for their first passed checks.
        """
        with self._lock:
            api, layout = self.api, self.layout
            servers = self._servers()
            slots = self._assign_slots(spec, servers)
            targets_wanted: dict[str, tuple[str, str]] = {}
            placements = [
                (weight, slots[route.name], route, target)
                for route in spec.routes
                for group, weight in _server_weights(route)
                for target in group.targets
            ]
            # Weights are set one server at a time: raising before lowering means a swap never leaves a
            # backend with every weight at 0 (a 503) between two commands.
            for weight, slot, route, target in sorted(placements, key=lambda p: p[0] == 0):
                targets_wanted[target.id] = (slot, target.address)
                up = target.healthy or restored
                self._place(slot, route, target.id, target.address, weight, up, servers.get(target.id))
            api.sync_map(layout.map("routes"), {slots[r.name]: r.name for r in spec.routes})
            api.sync_map(layout.map("check"), {slots[r.name]: r.health.path for r in spec.routes})
            api.sync_map(
                layout.map("max_body"), {slots[r.name]: str(r.max_body) for r in spec.routes if r.max_body}
            )
            self._sync_target_maps(spec, servers)
            hosts = {h: slots[r.name] for r in spec.routes for h in r.hosts if not h.startswith("*.")}
            suffixes = {h[1:]: slots[r.name] for r in spec.routes for h in r.hosts if h.startswith("*.")}
            default = {"default": slots[r.name] for r in spec.routes if r.default}  # noqa: B035 (one at most)
            api.sync_map(layout.map("hosts"), hosts)
            api.sync_map(layout.map("suffixes"), suffixes)
            api.sync_map(layout.map("default"), default)
            old_routes = {t.id: r for r in self._spec.routes for g in r.groups for t in g.targets}
            now = time.monotonic()
            for target_id, (slot, address, admin_state) in servers.items():
                if targets_wanted.get(target_id, (slot, address)) == (slot, address) and target_id in (
                    targets_wanted
                ):
                    self._drains.pop(target_id, None)
                    continue
                if target_id not in self._drains:
                    timeout = (drain_timeouts or {}).get(target_id)
                    if timeout is None:
                        old = old_routes.get(target_id)
                        timeout = old.drain_timeout if old is not None else 30.0
                    self._drains[target_id] = now + timeout
                    if admin_state != "drain":
                        api.run("set", "server", f"{slot}/{target_id}", "state", "drain")
            save_table(layout.table, spec)
            self._spec = spec
            self._progress()

    def _servers(self) -> dict[str, tuple[str, str, str]]:
        """Every dynamic server: target id → (slot, host:port, admin state: ready, drain or maint)."""
        found = {}
        for row in self.api.table("show", "stat"):
            if row.get("pxname", "").startswith("slot") and row.get("svname") not in ("FRONTEND", "BACKEND"):
                status = row.get("status", "")
                state = "maint" if status.startswith("MAINT") else "drain" if status == "DRAIN" else "ready"
                found[row["svname"]] = (row["pxname"], row.get("addr", ""), state)
        return found

    def _assign_slots(self, spec: TableSpec, servers: dict[str, tuple[str, str, str]]) -> dict[str, str]:
        """Route → slot: its slot so far, else a slot no route holds and no draining server uses."""
        held = {route: slot for slot, route in self.api.map_entries(self.layout.map("routes")).items()}
        assigned = {r.name: held[r.name] for r in spec.routes if r.name in held}
        busy = set(assigned.values()) | {slot for slot, _, _ in servers.values()}
        free = [s for s in slot_names() if s not in busy]
        for route in spec.routes:
            if route.name not in assigned:
                if not free:
                    raise ServiceError(f"route {route.name!r}: every HAProxy backend slot is in use")
                assigned[route.name] = free.pop(0)
        return assigned

    def _place(
        self,
        slot: str,
        route: RouteSpec,
        target_id: str,
        address: str,
        weight: int,
        up: bool,
        current: tuple[str, str, str] | None,
    ) -> None:
        """Add the server when missing (checked, passively ejected), else set its weight and readiness."""
        api = self.api
        name = f"{slot}/{target_id}"
        if current is not None and current[:2] != (slot, address):
            self._remove(current[0], target_id)
            current = None
        if current is None:
            health = route.health
            # A new server comes out of maintenance as up: a target not known healthy gets its traffic
            # (its weight) only once it has been marked down, so that its checks admit it.
            api.run(
                "add", "server", name, address, "weight", str(weight if up else 0),
                "check", "inter", str(int(health.interval * 1000)),
                "fall", str(health.unhealthy_threshold), "rise", str(health.healthy_threshold),
                "observe", "layer7", "error-limit", str(ERROR_LIMIT), "on-error", "mark-down",
                "pool-max-conn", "-1", "pool-purge-delay", "5s",
            )  # fmt: skip
            api.run("enable", "health", name)
            api.run("enable", "server", name)
            if not up:
                api.run("set", "server", name, "health", "down")
                api.run("set", "server", name, "weight", str(weight))
            self._drained.pop(target_id, None)
            return
        api.run("set", "server", name, "weight", str(weight))
        if current[2] != "ready":
            api.run("set", "server", name, "state", "ready")

    def _sync_target_maps(self, spec: TableSpec, servers: dict[str, tuple[str, str, str]]) -> None:
        """Each target's group, version and zone (kept for draining ones: their last requests are logged)."""
        layout = self.layout
        maps: dict[str, dict[str, str]] = {"group": {}, "version": {}, "zone": {}}
        for name in maps:
            current = self.api.map_entries(layout.map(name))
            maps[name] = {k: v for k, v in current.items() if k in servers}
        for route in spec.routes:
            for group in route.groups:
                for target in group.targets:
                    maps["group"][target.id] = f"{route.name}/{group.name}"
                    if target.version or group.version:
                        maps["version"][target.id] = target.version or group.version
                    if target.zone:
                        maps["zone"][target.id] = target.zone
        for name, wanted in maps.items():
            self.api.sync_map(layout.map(name), wanted)

    def _remove(self, slot: str, target_id: str) -> bool:
        """Delete a server now (its remaining requests are cut); False while HAProxy still holds it."""
        name = f"{slot}/{target_id}"
        api = self.api
        api.run("set", "server", name, "state", "maint")
        api.run("shutdown", "sessions", "server", name)
        try:
            api.run("del", "server", name)
        except ServiceError:
            return False
        return True

    def _progress(self) -> None:
        """Finish the drains whose target has no request left or whose deadline passed."""
        if not self._drains:
            return
        rows = {r["svname"]: r for r in self._stat_rows()}
        now = time.monotonic()
        for target_id, deadline in list(self._drains.items()):
            row = rows.get(target_id)
            if row is None:
                self._drains.pop(target_id)
                continue
            if int(row.get("scur") or 0) > 0 and now < deadline:
                continue
            self._drained[target_id] = self._describe(row, "drained")
            while len(self._drained) > _RECENT_DRAINED:
                self._drained.pop(next(iter(self._drained)))
            self._count(row)
            if self._remove(row["pxname"], target_id):
                self._drains.pop(target_id)

    # -- reading --------------------------------------------------------------------------------------
    def _stat_rows(self) -> list[dict[str, str]]:
        return [
            row
            for row in self.api.table("show", "stat")
            if row.get("pxname", "").startswith("slot") and row.get("svname") not in ("FRONTEND", "BACKEND")
        ]

    def target(self, target_id: str) -> dict[str, Any]:
        with self._lock:
            self._progress()
            if target_id in self._drained:
                return self._drained[target_id]
            for row in self._stat_rows():
                if row["svname"] == target_id:
                    if target_id in self._drains:
                        return self._describe(row, "draining")
                    return self._describe(row, self._state(row))
            raise NotFoundError(f"target {target_id!r}: unknown to this router")

    def _describe(self, row: dict[str, str], state: str) -> dict[str, Any]:
        """The `GET /targets/{id}` document of the embedded router, from a `show stat` row."""
        target_id = row["svname"]
        route, _, group = self._group_of(target_id).partition("/")
        spec = self._target_spec(target_id)
        check_status = row.get("check_status", "")
        check = None
        if check_status and check_status != "INI":
            code = row.get("check_code") or ""
            ok = check_status.startswith("L7OK") or check_status.startswith("L4OK")
            check = {
                "path": next((r.health.path for r in self._spec.routes if r.name == route), "/"),
                "ok": ok,
                "status": int(code) if code.isdigit() else None,
                "error": None if ok else (row.get("last_chk") or check_status),
                "latency_ms": float(row.get("check_duration") or 0),
                "at": time.time(),
                "repeats": 1,
            }
        return {
            "id": target_id,
            "address": row.get("addr", ""),
            "state": state,
            "healthy": state == "healthy",
            "in_flight": int(row.get("scur") or 0),
            "zone": spec.get("zone", ""),
            "version": spec.get("version", ""),
            "group": group,
            "route": route,
            "check": check,
        }

    def _group_of(self, target_id: str) -> str:
        for route in self._spec.routes:
            for group in route.groups:
                if any(t.id == target_id for t in group.targets):
                    return f"{route.name}/{group.name}"
        return self.api.map_entries(self.layout.map("group")).get(target_id, "/")

    def _target_spec(self, target_id: str) -> dict[str, str]:
        for route in self._spec.routes:
            for group in route.groups:
                for t in group.targets:
                    if t.id == target_id:
                        return {"zone": t.zone, "version": t.version or group.version}
        return {}

    def health(self) -> dict[str, Any]:
        with self._lock:
            self._progress()
            rows = {r["svname"]: r for r in self._stat_rows()}
            routes = {}
            for route in self._spec.routes:
                groups = {}
                for g in route.groups:
                    targets = {
                        t.id: self._describe(rows[t.id], self._state(rows[t.id]))
                        for t in g.targets
                        if t.id in rows
                    }
                    groups[g.name] = {
                        "weight": g.weight,
                        "version": g.version,
                        "healthy": sum(1 for t in targets.values() if t["healthy"]),
                        "targets": targets,
                    }
                routes[route.name] = {
                    "healthy": any(groups[g.name]["healthy"] for g in route.groups if g.weight),
                    "groups": groups,
                }
            draining = {i: self._describe(rows[i], "draining") for i in self._drains if i in rows}
            return {"routes": routes, "draining": draining}

    def _state(self, row: dict[str, str]) -> str:
        """A server's state in the embedded router's words."""
        status = row.get("status", "")
        if status.startswith("UP") or status == "no check":
            self._seen_up.add(row["svname"])
            return "healthy"
        if status in ("DRAIN", "NOLB"):
            return "draining"
        if status.startswith("MAINT"):
            return "drained"
        return "unhealthy" if row["svname"] in self._seen_up else "adding"

    def _count(self, row: dict[str, str]) -> None:
        """Add what a server answered since the last reading to its target's and its group's counters."""
        target_id = row["svname"]
        now = tuple(int(row.get(f"hrsp_{c}") or 0) for c in ("1xx", "2xx", "3xx", "4xx", "5xx"))
        key = (row["pxname"], target_id)
        before = self._seen.get(key, (0, 0, 0, 0, 0))
        if any(n < b for n, b in zip(now, before, strict=True)):
            before = (0, 0, 0, 0, 0)
        self._seen[key] = now
        route, _, group = self._group_of(target_id).partition("/")
        target = self._target_stats.setdefault(target_id, Stats())
        group_stats = self._group_stats.setdefault((route, group), Stats())
        # HAProxy keeps an average over its last 1024 requests, not a histogram: the new requests are
        # counted at that average.
        seconds = int(row.get("ttime") or 0) / 1000
        bucket = bisect_left(BUCKETS, seconds)
        for stats in (target, group_stats):
            for i, (n, b) in enumerate(zip(now, before, strict=True)):
                stats.by_class[i] += n - b
            delta = sum(now) - sum(before)
            stats.latency[bucket] += delta
            stats.count += delta
            stats.total += delta * seconds
        target.in_flight = int(row.get("scur") or 0)

    def _read_counters(self) -> dict[str, dict[str, str]]:
        """Fold the counters of `show stat` in; its rows by target id. Targets gone and not recently
        drained are forgotten (their requests stay counted in their group)."""
        for stats in self._group_stats.values():
            stats.in_flight = 0
        rows = {row["svname"]: row for row in self._stat_rows()}
        for target_id, row in rows.items():
            self._count(row)
            route, _, group = self._group_of(target_id).partition("/")
            self._group_stats[(route, group)].in_flight += int(row.get("scur") or 0)
        for target_id in set(self._target_stats) - rows.keys() - self._drained.keys():
            del self._target_stats[target_id]
            self._seen_up.discard(target_id)
        return rows

    def metrics(self) -> dict[str, Any]:
        with self._lock:
            self._progress()
            rows = self._read_counters()
            targets = {}
            for target_id, stats in self._target_stats.items():
                route, _, group = self._group_of(target_id).partition("/")
                spec = self._target_spec(target_id)
                if target_id in self._drained or target_id not in rows:
                    state = "drained"
                elif target_id in self._drains:
                    state = "draining"
                else:
                    state = self._state(rows[target_id])
                targets[target_id] = {
                    **stats.snapshot(),
                    "route": route,
                    "group": group,
                    "version": spec.get("version", ""),
                    "zone": spec.get("zone", ""),
                    "state": state,
                }
            groups = {
                f"{route}/{group}": {**stats.snapshot(), "route": route, "group": group}
                for (route, group), stats in self._group_stats.items()
            }
            info = self.api.table("show", "stat", "-1", "1", "-1")
            connections = sum(int(r.get("scur") or 0) for r in info if r.get("svname") == "FRONTEND")
            return {
                "uptime": round(time.time() - self._started, 3),
                "connections": connections,
                "targets": targets,
                "groups": groups,
            }

    def metrics_text(self) -> str:
        with self._lock:
            rows = self._read_counters()
            targets = []
            for target_id, stats in self._target_stats.items():
                route, _, group = self._group_of(target_id).partition("/")
                version = self._target_spec(target_id).get("version") or ""
                targets.append(([route, group, target_id, version], stats.copy()))
            members = [
                (
                    route.name,
                    group.name,
                    group.weight,
                    [(t.id, t.id in rows and self._state(rows[t.id]) == "healthy") for t in group.targets],
                )
                for route in self._spec.routes
                for group in route.groups
            ]
            reading = Reading(
                groups=[
                    ([route, group], stats.copy()) for (route, group), stats in self._group_stats.items()
                ],
                targets=targets,
                members=members,
                connections=0,
                started=self._started,
            )
        return exposition(reading).decode()

    def ping(self) -> bool:
        try:
            return "Name: HAProxy" in self.api.ask("show info")
        except ServiceError:
            return False


def _unsendable(route: RouteSpec) -> str | None:
    """Why a value of the route cannot reach HAProxy's runtime API (the route is then refused, the rest
    of the table applied), or None."""
    for host in route.hosts:
        if not host.strip("*.") or any(c.isspace() for c in host):
            return f"host {host!r}: the HAProxy engine takes no empty host or whitespace in one"
    values = [("route name", route.name), ("health path", route.health.path)]
    for group in route.groups:
        values += [("group", group.name), ("version", group.version)]
        for target in group.targets:
            values += [("address", target.address), ("version", target.version), ("zone", target.zone)]
    for what, value in values:
        if unsendable(value):
            return f"{what} {value!r}: HAProxy's runtime API cannot carry a line end or NUL"
    return None


def _server_weights(route: RouteSpec) -> list[tuple[Any, int]]:
    """Each group with the weight of each of its targets: the group's share split between its targets."""
    shares = [g.weight / max(1, len(g.targets)) for g in route.groups]
    top = max(shares, default=0.0)
    weights = []
    for group, share in zip(route.groups, shares, strict=True):
        weight = 0 if share == 0 or top == 0 else max(1, round(_MAX_WEIGHT * share / top))
        weights.append((group, weight))
    return weights

"""The router's state: the live table, targets, drains, health loops, timers and persistence."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from sprout.errors import NotFoundError
from sprout.router.accesslog import AccessLog
from sprout.router.balancer import Group
from sprout.router.cache import EdgeCache
from sprout.router.config import RouterConfig
from sprout.router.health import check_loop
from sprout.router.metrics import Stats
from sprout.router.proxy import ClientProtocol
from sprout.router.routes import Route
from sprout.router.table import (
    HealthSpec,
    HostMatcher,
    TableSpec,
    host_name,
    save_table,
    table_to_dict,
    with_weights,
)
from sprout.router.target import State, Target
from sprout.router.tls import TlsFront
from sprout.router.upstream import Pool

log = logging.getLogger("sprout.router")
#: The timer task's tick, and how often it sweeps connections for their timeouts.
TICK = 0.25
SWEEP_EVERY = 0.5
#: How often the certificate folder is looked at for new or renewed certificates.
CERTS_EVERY = 1.0
_UNSEEN = object()
_RETIRED_KEEP = 1000


class Router:
    """Owns everything the proxy reads; every change goes through `apply_table` so swaps are atomic."""

    def __init__(
        self,
        config: RouterConfig,
        loop: asyncio.AbstractEventLoop,
        state_path: Path | None,
        access_log: AccessLog | None,
    ) -> None:
        self.config = config
        self.trusted_networks = config.trusted_networks()
        self.loop = loop
        self.state_path = state_path
        self.access_log = access_log
        self.clock = loop.time()
        self.started = time.time()
        self.spec = TableSpec()
        self.routes: dict[str, Route] = {}
        self.targets: dict[str, Target] = {}
        self.retired: dict[str, Target] = {}
        self.clients: set[ClientProtocol] = set()
        self._matcher = HostMatcher(self.spec)
        #: Route (or None) per raw Host header value seen; read directly by the client protocol.
        self.host_routes: dict[bytes, Route | None] = {}
        #: Counters per (route, group); kept when a group leaves the table so totals stay monotonic.
        self.group_stats: dict[tuple[str, str], Stats] = {}
        self._health_tasks: dict[str, asyncio.Task[None]] = {}
        self._drain_tasks: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rid_format = os.urandom(4).hex().encode() + b"-%x"
        self._rid_count = 0
        self._ticker: asyncio.Task[None] | None = None
        #: HTTPS certificates and the plain-HTTP answers of TLS hosts; None without an HTTPS listener.
        self.tls: TlsFront | None = None

    # -- hot-path helpers -----------------------------------------------------------------------------
    def request_id(self) -> bytes:
        """A request id unique to this process: 8 random hex digits, a dash and a hex counter."""
        self._rid_count += 1
        return self._rid_format % self._rid_count

    def is_trusted(self, peer: str) -> bool:
        """Whether a client address is one of the configured trusted proxies."""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_networks)

    def route_for(self, host: bytes) -> Route | None:
        """The route serving a raw Host header value, memoised per distinct value in `host_routes`."""
        hit = self.host_routes.get(host, _UNSEEN)
        if hit is _UNSEEN:
            route_name = self._matcher.match(host_name(host))
            hit = self.routes.get(route_name) if route_name is not None else None
            if len(self.host_routes) < 10_000:
                self.host_routes[host] = hit
        return hit if isinstance(hit, Route) else None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background task and keep a reference until it ends."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- table changes --------------------------------------------------------------------------------
    def apply_table(
        self,
        spec: TableSpec,
        persist: bool = True,
        drain_timeouts: dict[str, float | None] | None = None,
        restored: bool = False,
    ) -> None:
        """Swap in a new table: known target ids keep state and pools; missing ones drain.

        `restored` marks the table read back from the state file at start: its targets were serving
        before the restart, so they start healthy (a dead one is caught by the first failed connect).
        """
        old_targets = self.targets
        old_routes = self.routes
        old_specs = {r.name: r for r in self.spec.routes}
        targets: dict[str, Target] = {}
        routes: dict[str, Route] = {}
        for rspec in spec.routes:
            groups: list[Group] = []
            for gspec in rspec.groups:
                members: list[Target] = []
                stats = self.group_stats.setdefault((rspec.name, gspec.name), Stats())
                for tspec in gspec.targets:
                    host, port = tspec.host_port()
                    target = old_targets.get(tspec.id)
                    if target is None or (target.host, target.port) != (host, port):
                        target = Target(tspec.id, host, port, self._on_target_change)
                        target.pool = Pool(
                            target,
                            self.loop,
                            self.config.connect_timeout,
                            self.config.upstream_idle_timeout,
                            self.config.max_idle_per_target,
                        )
                        if tspec.healthy or restored:
                            target.state = State.HEALTHY
                    target.place(rspec.name, gspec.name, tspec.version or gspec.version, tspec.zone)
                    if target.group_stats is not stats:
                        # Moving between groups carries the in-flight count along.
                        target.group_stats.in_flight -= target.stats.in_flight
                        stats.in_flight += target.stats.in_flight
                        target.group_stats = stats
                    members.append(target)
                    targets[tspec.id] = target
                groups.append(Group(gspec.name, gspec.weight, gspec.version, members))
            cache = None
            if rspec.cache:
                previous = old_routes.get(rspec.name)
                cache = previous.cache if previous is not None and previous.cache is not None else None
                if cache is None:
                    cache = EdgeCache(self.config.cache_bytes, self.config.cache_object_bytes)
            route = Route(rspec, groups, cache)
            previous = old_routes.get(rspec.name)
            if cache is not None and previous is not None and previous.version_key() != route.version_key():
                cache.flush()
            routes[rspec.name] = route
        if persist and self.state_path is not None:
            save_table(self.state_path, spec)
        self.spec = spec
        self.routes = routes
        self.targets = targets
        self._matcher = HostMatcher(spec)
        self.host_routes = {}
        self._refresh_healthy()
        for target_id, target in old_targets.items():
            if targets.get(target_id) is not target:
                old_route = old_specs.get(target.route)
                timeout = (drain_timeouts or {}).get(target_id)
                if timeout is None:
                    timeout = old_route.drain_timeout if old_route is not None else 30.0
                self._start_drain(target, timeout)
        for target_id, target in targets.items():
            task = self._health_tasks.get(target_id)
            if task is None or task.done() or old_targets.get(target_id) is not target:
                self._health_tasks[target_id] = self.loop.create_task(check_loop(target, self._health_spec))
        for target_id in list(self._health_tasks):
            if target_id not in targets:
                self._health_tasks.pop(target_id).cancel()
        log.info("routing table applied: %d routes, %d targets", len(routes), len(targets))

    def set_weights(self, route_name: str, weights: dict[str, int]) -> None:
        """Change group weights of one route (the rest of the table is unchanged)."""
        self.apply_table(with_weights(self.spec, route_name, weights))

    def drain(self, target_id: str, timeout: float | None) -> None:
        """Take a target out of the table and drain it (optionally with its own deadline)."""
        if target_id not in self.targets:
            if target_id in self.retired:
                return
            raise NotFoundError(f"target {target_id!r}: not in the routing table; GET /table lists targets")
        routes = []
        for rspec in self.spec.routes:
            groups = [
                g.model_copy(update={"targets": [t for t in g.targets if t.id != target_id]})
                for g in rspec.groups
            ]
            routes.append(rspec.model_copy(update={"groups": groups}))
        self.apply_table(TableSpec(routes=routes), drain_timeouts={target_id: timeout})

    def _health_spec(self, target: Target) -> HealthSpec | None:
        if self.targets.get(target.id) is not target:
            return None
        route = self.routes.get(target.route)
        return route.spec.health if route is not None else None

    def _on_target_change(self, target: Target) -> None:
        self._refresh_healthy()

    def _refresh_healthy(self) -> None:
        for route in self.routes.values():
            for group in route.groups:
                group.healthy = [t for t in group.targets if t.state is State.HEALTHY]

    # -- draining -------------------------------------------------------------------------------------
    def _start_drain(self, target: Target, timeout: float) -> None:
        target.begin_drain()
        self.retired[target.id] = target
        while len(self.retired) > _RETIRED_KEEP:
            self.retired.pop(next(iter(self.retired)))
        if target.pool is not None:
            for conn in target.pool.idle:
                conn.close()
            target.pool.idle.clear()
        if target.in_flight == 0:
            target.finish_drain()
            return
        self._drain_tasks[target.id] = self.loop.create_task(self._drain_deadline(target, timeout))

    async def _drain_deadline(self, target: Target, timeout: float) -> None:
        await asyncio.sleep(timeout)
        for ex in list(target.exchanges):
            ex.cut(504, "target drained before the response ended")
        target.finish_drain()

    def drain_progress(self, target: Target) -> None:
        """Called when a draining target's last in-flight request ended."""
        task = self._drain_tasks.pop(target.id, None)
        if task is not None:
            task.cancel()
        target.finish_drain()

    def find_target(self, target_id: str) -> Target:
        """A target in the table or recently drained; NotFoundError otherwise."""
        target = self.targets.get(target_id) or self.retired.get(target_id)
        if target is None:
            raise NotFoundError(f"target {target_id!r}: unknown to this router")
        return target

    # -- periodic work --------------------------------------------------------------------------------
    def start_ticker(self) -> None:
        """Start the sweep that advances the coarse clock and enforces timeouts."""
        self._ticker = self.loop.create_task(self._tick())

    async def _tick(self) -> None:
        """Forever: enforce timeouts, close idle upstream connections, flush the access log.

        Nothing may end it: without it no header, idle or response timeout is enforced any more. A
        failing step is logged (once per distinct error) and the next tick tries again.
        """
        last_sweep = last_flush = last_certs = self.clock
        last_error = ""
        while True:
            await asyncio.sleep(TICK)
            try:
                now = self.clock = self.loop.time()
                if now - last_sweep >= SWEEP_EVERY:
                    last_sweep = now
                    for client in list(self.clients):
                        client.check_timeouts(now)
                    for target in self.targets.values():
                        if target.pool is not None and target.pool.idle:
                            target.pool.close_idle()
                if self.tls is not None and now - last_certs >= CERTS_EVERY:
                    last_certs = now
                    self.tls.reload()
                if self.access_log is not None and now - last_flush >= self.config.access_log_flush:
                    last_flush = now
                    self.access_log.flush()
                last_error = ""
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                if message != last_error:
                    last_error = message
                    with contextlib.suppress(Exception):
                        log.exception("router timers: a tick failed; the next one retries")

    def in_flight(self) -> int:
        """Requests in progress on all client connections."""
        return sum(1 for c in self.clients if c.exchange is not None)

    async def close(self) -> None:
        """Stop background work and close every upstream connection."""
        for task in [self._ticker, *self._health_tasks.values(), *self._drain_tasks.values(), *self._tasks]:
            if task is not None:
                task.cancel()
        for target in [*self.targets.values(), *self.retired.values()]:
            if target.pool is not None:
                target.pool.close_all()
        if self.access_log is not None:
            self.access_log.close()

    # -- reports --------------------------------------------------------------------------------------
    def table(self) -> dict[str, Any]:
        """The current table document."""
        return table_to_dict(self.spec)

    def health(self) -> dict[str, Any]:
        """Per route, group and target health."""
        routes = {}
        for route in self.routes.values():
            groups = {}
            for g in route.groups:
                groups[g.name] = {
                    "weight": g.weight,
                    "version": g.version,
                    "healthy": len(g.healthy),
                    "targets": {t.id: t.describe() for t in g.targets},
                }
            routes[route.name] = {
                "healthy": any(g.healthy for g in route.groups if g.weight > 0),
                "groups": groups,
            }
        draining = {t.id: t.describe() for t in self.retired.values() if t.state is State.DRAINING}
        return {"routes": routes, "draining": draining}

    def metrics_json(self) -> dict[str, Any]:
        """The `/metrics.json` snapshot: per target and per group counters since start."""
        targets = {}
        for target in [*self.retired.values(), *self.targets.values()]:
            doc = target.stats.snapshot()
            doc.update(
                route=target.route,
                group=target.group,
                version=target.version,
                zone=target.zone,
                state=target.state,
            )
            targets[target.id] = doc
        groups = {}
        for (route, group), stats in self.group_stats.items():
            doc = stats.snapshot()
            doc.update(route=route, group=group)
            groups[f"{route}/{group}"] = doc
        return {
            "uptime": round(time.time() - self.started, 3),
            "connections": len(self.clients),
            "targets": targets,
            "groups": groups,
        }

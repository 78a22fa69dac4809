"""The live autoscaler: once a second, router metrics → each environment's scaler → desired capacity.

Per environment it keeps the previous `/metrics.json` totals of its route, so a sample is a true
per-second figure (request rate, requests in flight, p95 over the last second) plus the mean CPU of the
serving instances' process trees (psutil). The `Scaler` (pure policies in `sprout.scale`) returns a
desired capacity with its reason; a change is written to the state store with an event, and the
reconcile loop launches or drains to match. No scaling while a release moves traffic between fleets.

Each environment is judged on its own: an error in one (a stored manifest the scaler cannot read, a
state it does not expect) is recorded as a `scale.error` event on that environment, once per distinct
message, and every other environment goes on scaling. Readings taken across or right after a stall of
the router are discarded (`sprout.scale.readings`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from sprout.controlplane.groups import desired_groups, group_of
from sprout.controlplane.routing import route_name
from sprout.deploy.analysis import Window, latency_delta, quantile
from sprout.router.client import RouterControl
from sprout.scale.config import Limits
from sprout.scale.model import Fleet, MetricSample
from sprout.scale.readings import judge_reading
from sprout.scale.scaler import Scaler
from sprout.state import Environment, StateStore
from sprout.state.models import LoadHour

log = logging.getLogger(__name__)


def route_totals(metrics: Mapping[str, Any], route: str) -> dict[str, Any]:
    """One route's group counters summed into a single snapshot (the `/metrics.json` group shape)."""
    requests = errors = in_flight = 0
    buckets: dict[str, int] = {}
    for group in metrics.get("groups", {}).values():
        if group.get("route") != route:
            continue
        requests += int(group["requests"]["total"])
        errors += int(group["requests"].get("5xx", 0))
        in_flight += int(group.get("in_flight", 0))
        for bound, count in group["latency"]["buckets"].items():
            buckets[bound] = buckets.get(bound, 0) + int(count)
    return {
        "requests": {"total": requests, "5xx": errors},
        "in_flight": in_flight,
        "latency": {"buckets": buckets},
    }


#: How often an environment's observed load is written to the state store (and at each hour's end).
LOAD_FLUSH_SECONDS = 60.0


@dataclass
class _Hour:
    """Observed load of one environment since the last flush, and its latency over the whole hour."""

    start: float
    seconds: int = 0
    requests: int = 0
    peak_rps: float = 0.0
    instance_seconds: float = 0.0
    latency: dict[float, int] = field(default_factory=dict)
    flushed_at: float = 0.0

    def add(self, seconds: float, requests: int, instances: int, latency: Mapping[float, int]) -> None:
        self.seconds += round(seconds)
        self.requests += requests
        self.peak_rps = max(self.peak_rps, requests / seconds)
        self.instance_seconds += instances * seconds
        for bound, count in latency.items():
            self.latency[bound] = self.latency.get(bound, 0) + count

    def record(self, app: str, env: str) -> LoadHour:
        p99 = quantile(sorted(self.latency.items()), 0.99)
        return LoadHour(
            app, env, self.start, self.seconds, self.requests, self.peak_rps, p99, self.instance_seconds
        )


@dataclass
class _Watch:
    """What one environment's scaler needs to remember between seconds."""

    scaler: Scaler
    manifest_hash: str
    desired: int
    """The desired capacity this autoscaler last saw or wrote: a different one was set by someone else."""
    totals: dict[str, Any] | None = None
    at: float | None = None
    settle_until: float = 0.0
    """Readings before this instant are discarded: the router stalled just before."""
    hour: _Hour | None = None


def _scaler(env: Environment) -> Scaler:
    manifest = env.manifest
    return Scaler(manifest.scaling, Limits.of(manifest.instances))


def _fleet(desired: int, serving: int, draining: int, releasing: bool) -> Fleet:
    """The fleet as the scaler must see it: the desired capacity, of which `serving` instances serve.

    The scaler's current capacity is serving + launching. It is the desired capacity the control plane
    is committed to, not the instances alive this second: a crashed instance awaiting its replacement,
    one failing a few health checks, or one not launched yet still counts (else a load "within
    tolerance" of the smaller fleet would lower desired capacity at once, a scale-in that skips the
    stabilization window), and surplus instances about to be drained do not (else a scale-in by hand
    would bounce back to the fleet still alive).
    """
    counted = min(serving, desired)
    return Fleet(serving=counted, launching=desired - counted, draining=draining, releasing=releasing)


class Autoscaler:
    """Drives every environment's `Scaler` from the router's metrics; wired by the daemon."""

    def __init__(
        self,
        store: StateStore,
        router: Callable[[], RouterControl],
        releasing: Callable[[str, str], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._router = router
        self._releasing = releasing
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        self._processes: dict[int, psutil.Process] = {}
        self._errors: dict[str, str] = {}

    def tick(self) -> None:
        """One second of autoscaling for every environment that has it enabled, each on its own."""
        metrics = self._router().metrics()
        # After the reading, not before: a router that stalled while answering must show as a gap.
        now = self._clock()
        for env in self._store.list_environments():
            try:
                if not env.manifest.scaling.enabled or env.current_version is None:
                    self._watches.pop(env.id, None)
                    continue
                self._scale(env, metrics, now)
            except Exception as exc:
                self._failed(env, exc)
            else:
                self._errors.pop(env.id, None)

    def _failed(self, env: Environment, exc: Exception) -> None:
        """Record an environment's scaling error as an event on it, once per distinct message."""
        message = f"{type(exc).__name__}: {exc}"
        if self._errors.get(env.id) == message:
            return
        self._errors[env.id] = message
        log.warning("%s: scaling failed: %s", env.id, message)
        self._store.record_event(
            env.app,
            env.name,
            "scale.error",
            f"{env.id}: scaling stopped for this environment: {message}; fix its manifest and run `sprout up`",
        )

    def _scale(self, env: Environment, metrics: Mapping[str, Any], now: float) -> None:
        watch = self._watches.get(env.id)
        if watch is None:
            watch = self._watches[env.id] = _Watch(_scaler(env), env.manifest_hash, env.desired_capacity)
        elif watch.manifest_hash != env.manifest_hash or watch.desired != env.desired_capacity:
            # New bounds or settings, or a capacity set by hand (`sprout scale --desired`, `up`): a new
            # scaler counts the fleet it finds as a recommendation, so that capacity holds for one
            # stabilization window instead of being undone in the next second. Metrics and the hour go on.
            watch.scaler, watch.manifest_hash, watch.desired = (
                _scaler(env),
                env.manifest_hash,
                env.desired_capacity,
            )
        totals = route_totals(metrics, route_name(env.app, env.name))
        previous, since = watch.totals, watch.at
        verdict = judge_reading(since, now, watch.settle_until)
        if verdict.settle_until > watch.settle_until:
            self._store.record_event(env.app, env.name, "scale.stall", f"reading discarded: {verdict.reason}")
        watch.totals, watch.at, watch.settle_until = totals, now, verdict.settle_until
        if previous is None or since is None or now <= since:
            return
        window = Window.between(previous, totals)
        # Only the groups that take traffic are the fleet: a warm standby kept for rollback serves nothing.
        groups = [g for g in desired_groups(self._store, env) if g.weight > 0]
        names = {g.name for g in groups}
        instances = [
            i
            for i in self._store.list_instances(
                env.app, env.name, states=("launching", "running", "draining")
            )
            if group_of(i) in names
        ]
        serving = [i for i in instances if i.state == "running" and i.health == "healthy"]
        sample = MetricSample(
            request_rate=window.requests / (now - since),
            concurrency=float(totals["in_flight"]),
            # Reading CPU walks /proc for every instance's process tree: only when a policy scales on it.
            cpu=self._cpu([i.pid for i in serving if i.pid]) if env.manifest.scaling.metric == "cpu" else 0.0,
            p95_latency=window.p95,
        )
        fleet = _fleet(
            env.desired_capacity,
            len(serving),
            sum(1 for i in instances if i.state == "draining"),
            # Two groups sharing the traffic are a release (canary, rolling) even between its steps.
            len(groups) != 1 or self._releasing(env.app, env.name),
        )
        self._account(
            env, watch, now - since, window.requests, len(serving), latency_delta(previous, totals), now
        )
        if not verdict.usable:
            log.info("%s: reading discarded: %s", env.id, verdict.reason)
            return
        decision = watch.scaler.observe(now, sample, fleet)
        if fleet.releasing:
            return
        # The reconcile loop gives the serving group this capacity (`Reconciler._follow_desired_capacity`).
        if decision.desired != env.desired_capacity:
            self._store.set_desired_capacity(env.app, env.name, decision.desired, decision.reason)
            watch.desired = decision.desired
            self._store.record_event(
                env.app,
                env.name,
                "scale",
                f"desired capacity {env.desired_capacity} → {decision.desired} ({decision.policy}): {decision.reason}",
                desired=decision.desired,
                policy=decision.policy,
                request_rate=round(sample.request_rate, 2),
                p95=round(sample.p95_latency, 4),
            )

    def _account(
        self,
        env: Environment,
        watch: _Watch,
        seconds: float,
        requests: int,
        instances: int,
        latency: Mapping[float, int],
        now: float,
    ) -> None:
        """Add this second to the environment's hour; write it out every minute and when the hour ends."""
        hour_start = now // 3600 * 3600
        hour = watch.hour
        if hour is not None and hour.start != hour_start:
            self._flush(env, hour)
            hour = None
        if hour is None:
            hour = watch.hour = _Hour(hour_start, flushed_at=now)
        hour.add(seconds, requests, instances, latency)
        if now - hour.flushed_at >= LOAD_FLUSH_SECONDS:
            self._flush(env, hour)
            hour.flushed_at = now

    def _flush(self, env: Environment, hour: _Hour) -> None:
        if hour.seconds:
            self._store.add_load(hour.record(env.app, env.name))
        hour.seconds, hour.requests, hour.peak_rps, hour.instance_seconds = 0, 0, 0.0, 0.0

    def _cpu(self, pids: list[int]) -> float:
        """Mean CPU percent per instance (agent and its app process tree) since the last call."""
        if not pids:
            return 0.0
        per_instance = []
        for pid in pids:
            total = 0.0
            with contextlib.suppress(psutil.Error):
                root = self._process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += self._process(proc.pid).cpu_percent(None)
            per_instance.append(total)
        return sum(per_instance) / len(per_instance)

    def _process(self, pid: int) -> psutil.Process:
        # cpu_percent(None) measures since the previous call on the same Process object: keep them.
        proc = self._processes.get(pid)
        if proc is None or not proc.is_running():
            proc = self._processes[pid] = psutil.Process(pid)
        return proc

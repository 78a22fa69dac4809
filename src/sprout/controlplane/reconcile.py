"""The reconcile loop: desired fleet (state store) vs observed fleet (provider + router) → actions.

One pass (`Reconciler.run_once`) is level-triggered and idempotent, in the shape of kubernetes'
sample-controller, and runs every `interval` seconds:

1. observe: the provider's live processes, the router's per-target health;
2. per environment, sync its instances: an exited instance is marked failed and replaced; one that is not
   healthy `health.grace` seconds after launch is retired and replaced; health changes are recorded;
3. fill the fleet up to the desired capacity of the current version (spread evenly across zones), retire
   the surplus, and retire instances of an older version once the current one is fully healthy;
4. stop orphans: live processes the state store does not know, or whose environment is gone;
5. push the routing table when it changed, then drain and stop the retired instances in the background.

Every decision is an event in the state store. A restarted daemon runs the same pass: whatever runs is
adopted through `provider.observe()`, so nothing is started twice and nothing is left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sprout.controlplane.backoff import Backoff
from sprout.controlplane.groups import desired_groups, group_of
from sprout.controlplane.instances import InstanceLauncher
from sprout.controlplane.resources import Resources
from sprout.controlplane.retire import STOP_GRACE, Retirer
from sprout.controlplane.routing import build_table, route_name
from sprout.errors import SproutError
from sprout.healthcheck import describe_check
from sprout.loops import ErrorHook, Loop, event_hook
from sprout.providers.base import ObservedInstance, Provider
from sprout.providers.local.placement import place
from sprout.router.client import RouterControl
from sprout.spec.models import HealthSection
from sprout.state import Environment, Instance, StateStore
from sprout.state.models import LIVE_STATES, Group

log = logging.getLogger(__name__)

INTERVAL = 0.5


@dataclass
class _Pass:
    """What one pass decided, applied after the routing table is pushed."""

    retire: list[tuple[Instance, float]] = field(default_factory=list)
    live_ids: set[str] = field(default_factory=set)
    health_changed: bool = False


class Reconciler:
    """Converges every environment to its desired fleet; `lock` serialises passes with API mutations."""

    def __init__(
        self,
        store: StateStore,
        provider: Provider,
        launcher: InstanceLauncher,
        resources: Resources,
        router: Callable[[], RouterControl],
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.time,
        on_error: ErrorHook | None = None,
    ) -> None:
        self._store = store
        self._provider = provider
        self._launcher = launcher
        self._resources = resources
        self._router = router
        self._clock = clock
        self.lock = threading.RLock()
        self._backoff: dict[str, Backoff] = {}
        self._retirer = Retirer(store, provider)
        self._pushed: dict[str, Any] | None = None
        #: Called after a pass that recorded a health change (the daemon wakes the release engine with it).
        self.on_health_change: Callable[[], None] = _nothing
        # Level-triggered: a failed pass is logged and the next one retries from scratch.
        self.loop = Loop("reconcile", self.run_once, interval, on_error=on_error or event_hook(store))
        self._env_errors: dict[str, str] = {}
        #: Environment id → why the router refused its routing entry at the last push.
        self._rejected: dict[str, str] = {}
        self._unhealthy_since: dict[str, float] = {}
        #: Instance id → the router's last health check of it (replaced whole by each pass).
        self._checks: dict[str, dict[str, Any]] = {}
        #: Instance id → the failing check outcome last recorded as an event (one event per new outcome).
        self._told: dict[str, tuple[Any, ...]] = {}

    # -- the loop ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Run passes in a background thread until `stop()`."""
        self.loop.start()

    def nudge(self) -> None:
        """Run a pass now rather than at the next tick (the desired state just changed)."""
        self.loop.nudge()

    def stop(self) -> None:
        """Stop the loop after the current pass; in-flight retirements finish on their own threads."""
        self.loop.stop()

    def checks(self) -> dict[str, dict[str, Any]]:
        """Instance id → the router's last health check of it, as of the last pass."""
        return self._checks

    def failing(self) -> dict[str, dict[str, Any]]:
        """Environment id → `{since, retry_every, failures}` for each environment whose launches back off."""
        reports = {env_id: backoff.report() for env_id, backoff in list(self._backoff.items())}
        return {env_id: report for env_id, report in reports.items() if report is not None}

    # -- one pass ----------------------------------------------------------------------------------

    def run_once(self) -> None:
        """One level-triggered pass over every environment."""
        with self.lock:
            admin = self._router()
            observed = {o.instance_id: o for o in self._provider.observe()}
            health, self._checks = _router_health(admin)
            decided = _Pass()
            envs = self._store.list_environments()
            for env in envs:
                try:
                    self._sync(env, observed, health, decided)
                except SproutError as exc:
                    self._env_failed(env, exc, decided)
                else:
                    self._env_errors.pop(env.id, None)
            self._stop_orphans(observed, decided)
            for gone in set(self._backoff) - {env.id for env in envs}:
                # A removed environment's failures are not those of one created later under its name.
                del self._backoff[gone]
            for gone in set(self._unhealthy_since) - decided.live_ids:
                del self._unhealthy_since[gone]
            for gone in set(self._told) - decided.live_ids:
                del self._told[gone]
            self.push_table(admin)
            for instance, drain in decided.retire:
                self._retirer.begin(admin, instance, drain)
        if decided.health_changed:
            self.on_health_change()

    def push_table(self, admin: RouterControl) -> bool:
        """Send the routing table to the router when it differs from the last one sent; True if sent."""
        with self.lock:
            envs = self._store.list_environments()
            instances = self._store.list_instances(states=LIVE_STATES)
            table = build_table(envs, instances, {env.id: desired_groups(self._store, env) for env in envs})
            if self._pushed is None:
                self._pushed = admin.get_table()
            if table == self._pushed:
                return False
            answer = admin.put_table(table)
            self._pushed = table
            self._store.record_event(
                None,
                None,
                "router.table",
                f"routing table pushed: {_describe_table(table)}",
                routes=len(table["routes"]),
            )
            self._record_rejected(envs, answer.get("rejected") or [])
            return True

    def _record_rejected(self, envs: list[Environment], rejected: list[dict[str, str]]) -> None:
        """An entry the router refused is an event of its environment alone (once per distinct reason)."""
        by_route = {route_name(env.app, env.name): env for env in envs}
        reasons: dict[str, str] = {}
        for item in rejected:
            env = by_route.get(item.get("route", ""))
            if env is None:
                continue
            reasons[env.id] = error = str(item.get("error"))
            if self._rejected.get(env.id) != error:
                self._store.record_event(
                    env.app,
                    env.name,
                    "router.rejected",
                    f"{env.id}: the router refused its routing entry ({error}) and serves the other "
                    "environments as before; fix the manifest and run `sprout up` again",
                )
        self._rejected = reasons

    def _env_failed(self, env: Environment, exc: SproutError, decided: _Pass) -> None:
        """One environment could not be synced: record why (once), and keep its instances out of the sweep."""
        message = str(exc)
        if self._env_errors.get(env.id) != message:
            self._env_errors[env.id] = message
            self._store.record_event(env.app, env.name, "env.error", f"{env.id}: {message}; retrying")
        states = (*LIVE_STATES, "draining")
        decided.live_ids.update(i.id for i in self._store.list_instances(env.app, env.name, states=states))

    def forget_table(self) -> None:
        """Forget what was pushed (a new router process starts from its own persisted table)."""
        with self.lock:
            self._pushed = None

    def _sync(
        self,
        env: Environment,
        observed: Mapping[str, ObservedInstance],
        health: Mapping[str, bool],
        decided: _Pass,
    ) -> None:
        """Converge one environment."""
        manifest = env.manifest
        now = self._clock()
        backoff = self._backoff.setdefault(env.id, Backoff())
        self._resources.sync(env.app, env.name, manifest)
        live: list[Instance] = []
        for instance in self._store.list_instances(env.app, env.name, states=(*LIVE_STATES, "draining")):
            if instance.state == "draining":
                decided.live_ids.add(instance.id)
                if not self._retirer.busy(instance.id):
                    decided.retire.append((instance, manifest.deploy.drain))
                continue
            process = observed.get(instance.id)
            if process is None or process.state == "exited":
                self._mark_exited(env, instance, backoff, now)
                continue
            decided.live_ids.add(instance.id)
            was = instance.health
            instance = self._record_health(env, instance, health.get(instance.id), backoff)
            decided.health_changed = decided.health_changed or instance.health != was
            self._tell_failing_check(env, instance)
            age = now - (instance.started_at or instance.created_at)
            if (
                self._still_unhealthy_for_a_while(instance, manifest.health, now)
                and age > manifest.health.grace
            ):
                why = (
                    "fails its health checks"
                    if instance.health == "unhealthy"
                    else f"not healthy {age:.0f}s after launch (grace {manifest.health.grace:g}s)"
                )
                self._store.record_event(
                    env.app,
                    env.name,
                    "instance.replace",
                    f"{instance.id} {why}; replacing it; last check: "
                    f"{describe_check(self._checks.get(instance.id))}",
                    instance=instance.id,
                )
                if instance.health != "unhealthy":
                    backoff.failed(now)
                decided.retire.append((self._store.update_instance(instance.id, state="draining"), 0.0))
                continue
            live.append(instance)
        self._converge(env, live, backoff, now, decided)

    def _follow_desired_capacity(self, env: Environment, groups: list[Group]) -> list[Group]:
        """Outside a release, the one group serving traffic runs the environment's desired capacity.

        A release writes its groups down and sizes them itself; once it is over, the capacity the
        autoscaler or `sprout scale` sets on the environment must reach the group that serves (a warm
        standby kept for rollback, at weight 0, keeps its size).
        """
        serving = [g for g in groups if g.weight > 0]
        if len(serving) != 1 or serving[0].capacity == env.desired_capacity:
            return groups
        if self._store.list_deployments(env.app, env.name, unfinished=True):
            return groups
        group = serving[0]
        followed = Group(group.name, group.version, env.desired_capacity, group.weight, group.standby_until)
        self._store.put_group(env.app, env.name, followed)
        return [followed if g is group else g for g in groups]

    def _still_unhealthy_for_a_while(self, instance: Instance, health: HealthSection, now: float) -> bool:
        """Not healthy, and (if it was healthy once) unhealthy for `unhealthy_threshold` check intervals.

        The router takes a target out of rotation on a single failed connect; replacing the instance
        waits until the router's checks have had the time to confirm it (or to bring it back).
        """
        if instance.health == "healthy":
            self._unhealthy_since.pop(instance.id, None)
            return False
        if instance.health == "unknown":
            return True
        since = self._unhealthy_since.setdefault(instance.id, now)
        return now - since >= health.interval * health.unhealthy_threshold

    def _converge(
        self, env: Environment, live: list[Instance], backoff: Backoff, now: float, decided: _Pass
    ) -> None:
        """Per desired group: launch what is missing, retire the surplus and the superseded version."""
        groups = self._follow_desired_capacity(env, desired_groups(self._store, env))
        members: dict[str, list[Instance]] = {}
        for instance in live:
            members.setdefault(group_of(instance), []).append(instance)
        for name in sorted(set(members) - {g.name for g in groups}):
            for instance in members[name]:
                self._retire_now(
                    env, instance, "instance.group_removed", f"{instance.id}: group {name} is gone", decided
                )
        for group in groups:
            self._converge_group(env, group, members.get(group.name, []), backoff, now, decided)

    def _converge_group(
        self,
        env: Environment,
        group: Group,
        members: list[Instance],
        backoff: Backoff,
        now: float,
        decided: _Pass,
    ) -> None:
        zones = env.manifest.instances.zones
        fresh = [i for i in members if i.version == group.version]
        stale = [i for i in members if i.version != group.version]
        missing = group.capacity - len(fresh)
        if missing > 0 and now >= backoff.not_before:
            counts = Counter(i.zone for i in fresh)
            for zone in place(zones, counts, missing):
                try:
                    launched = self._launcher.launch(env, group.version, zone, group.name)
                except SproutError as exc:
                    self._store.record_event(
                        env.app, env.name, "instance.launch_failed", f"launch in zone {zone} failed: {exc}"
                    )
                    backoff.failed(now)
                    break
                decided.live_ids.add(launched.id)
        elif missing < 0:
            for instance in _surplus(fresh, -missing):
                self._retire_now(
                    env,
                    instance,
                    "instance.scale_in",
                    f"{instance.id} (zone {instance.zone}) is surplus: {len(fresh)} running in group "
                    f"{group.name}, {group.capacity} desired",
                    decided,
                )
        healthy_fresh = sum(1 for i in fresh if i.health == "healthy")
        if stale and healthy_fresh >= group.capacity:
            for instance in stale:
                self._retire_now(
                    env,
                    instance,
                    "instance.superseded",
                    f"{instance.id} runs {instance.version}; {group.version} is healthy "
                    f"({healthy_fresh}/{group.capacity})",
                    decided,
                )

    def _retire_now(
        self, env: Environment, instance: Instance, kind: str, message: str, decided: _Pass
    ) -> None:
        """Record why, mark the instance draining, and stop it after this pass has pushed the table."""
        self._store.record_event(env.app, env.name, kind, message, instance=instance.id)
        decided.retire.append(
            (self._store.update_instance(instance.id, state="draining"), env.manifest.deploy.drain)
        )

    def _mark_exited(self, env: Environment, instance: Instance, backoff: Backoff, now: float) -> None:
        was_healthy = instance.health == "healthy"
        self._store.update_instance(instance.id, state="failed", health="unhealthy")
        self._store.record_event(
            env.app,
            env.name,
            "instance.exited",
            f"{instance.id} (zone {instance.zone}) exited; launching a replacement",
            instance=instance.id,
        )
        if not was_healthy:
            backoff.failed(now)
        # Clean up whatever is left of it (an agent whose app died exits; a stuck one is killed).
        self._provider.stop(instance.id, 0.0)

    def _record_health(
        self, env: Environment, instance: Instance, healthy: bool | None, backoff: Backoff
    ) -> Instance:
        """Copy the router's view of one instance into the state store, with an event on each change."""
        if healthy is None:
            return instance
        health = "healthy" if healthy else "unhealthy"
        fields: dict[str, Any] = {}
        if health != instance.health and (healthy or instance.health == "healthy"):
            fields["health"] = health
            self._store.record_event(
                env.app, env.name, f"instance.{health}", f"{instance.id} is {health}", instance=instance.id
            )
        if healthy:
            backoff.succeeded()
            if instance.state == "launching":
                fields["state"] = "running"
        return self._store.update_instance(instance.id, **fields) if fields else instance

    def _tell_failing_check(self, env: Environment, instance: Instance) -> None:
        """An event when an instance's checks start failing in a new way (a new status or error).

        A launching instance that does not listen yet is starting, not failing: only an answer (a status
        outside 2xx/3xx) counts until it was healthy once.
        """
        check = self._checks.get(instance.id)
        if check is None or check.get("ok"):
            self._told.pop(instance.id, None)
            return
        if instance.state == "launching" and check.get("status") is None:
            return
        outcome = (check.get("path"), check.get("status"), check.get("error"))
        if self._told.get(instance.id) != outcome:
            self._told[instance.id] = outcome
            self._store.record_event(
                env.app,
                env.name,
                "instance.check_failed",
                f"{instance.id}: health check failed: {describe_check({**check, 'repeats': 1})}",
                instance=instance.id,
            )

    def _stop_orphans(self, observed: Mapping[str, ObservedInstance], decided: _Pass) -> None:
        """Stop every live process the state store does not count as part of a live environment."""
        for instance_id, process in observed.items():
            if (
                instance_id in decided.live_ids
                or self._retirer.busy(instance_id)
                or process.state == "exited"
            ):
                continue
            record = self._store.get_instance(instance_id)
            app = record.app if record else None
            env = record.env if record else None
            self._store.record_event(
                app,
                env,
                "instance.orphan",
                f"{instance_id} (pid {process.pid}) belongs to no live environment; stopping it",
                instance=instance_id,
            )
            self._provider.stop(instance_id, STOP_GRACE)
            if record is not None and record.state != "stopped":
                self._store.update_instance(instance_id, state="stopped")

    def wait_retired(self, timeout: float) -> None:
        """Wait for background retirements to finish (used before shutting down)."""
        self._retirer.wait(timeout)


def _nothing() -> None:
    """The default health-change hook: nobody to tell."""


def _surplus(instances: list[Instance], count: int) -> list[Instance]:
    """Which instances to remove: from the fullest zone first, unhealthy before healthy, newest first."""
    chosen: list[Instance] = []
    pool = list(instances)
    for _ in range(count):
        per_zone = Counter(i.zone for i in pool)
        fullest = max(per_zone.values())
        candidates = [i for i in pool if per_zone[i.zone] == fullest]
        candidates.sort(key=lambda i: (i.health == "healthy", -(i.started_at or i.created_at)))
        chosen.append(candidates[0])
        pool.remove(candidates[0])
    return chosen


def _router_health(admin: RouterControl) -> tuple[dict[str, bool], dict[str, dict[str, Any]]]:
    """Target id → healthy, as the router's active and passive checks see it right now; and its last check.

    Targets still being admitted (`adding`) are left out of the first: they are not unhealthy, just not
    known yet. Their last check is kept: it says why they are not healthy yet.
    """
    found: dict[str, bool] = {}
    checks: dict[str, dict[str, Any]] = {}
    for route in admin.health().get("routes", {}).values():
        for group in route.get("groups", {}).values():
            for target_id, target in group.get("targets", {}).items():
                if target.get("state") != "adding":
                    found[target_id] = bool(target.get("healthy"))
                if target.get("check"):
                    checks[target_id] = dict(target["check"])
    return found, checks


def _describe_table(table: Mapping[str, Any]) -> str:
    parts = []
    for route in table["routes"]:
        targets = [t for g in route["groups"] for t in g["targets"]]
        parts.append(f"{route['name']} ({len(targets)} targets)")
    return ", ".join(parts) or "empty"

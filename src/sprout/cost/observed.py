"""What the bill is computed from, read from the state store: instance lifetimes, desired capacity over
time, each app's prices, observed load and scaling settings."""

from __future__ import annotations

from collections import defaultdict

from sprout.cost.advise import EnvScaling, HourlyLoad
from sprout.cost.capacity import DesiredCapacity
from sprout.cost.lifetimes import InstanceLifetime
from sprout.cost.prices import CostConfig
from sprout.cost.report import Pricing
from sprout.spec.models import Manifest
from sprout.state import StateStore

#: Every `capacity` event is read (the store keeps them all; a year of hourly decisions is ~9000 rows).
_ALL_EVENTS = 10_000_000


def lifetimes(store: StateStore) -> list[InstanceLifetime]:
    """Every instance ever launched, from launch to stop (None while it runs), with its size.

    The size is the one in the manifest of the instance's version: environments that are gone still
    have their versions, so their instances stay on the bill.
    """
    sizes: dict[tuple[str, str], str] = {}
    found = []
    for instance in store.list_instances():
        key = (instance.app, instance.version)
        if key not in sizes:
            version = store.get_version(instance.app, instance.version)
            sizes[key] = version.manifest.instances.size if version is not None else "small"
        found.append(
            InstanceLifetime(
                instance_id=instance.id,
                app=instance.app,
                env=instance.env,
                version=instance.version,
                zone=instance.zone,
                size=sizes[key],
                start=instance.started_at or instance.created_at,
                end=instance.stopped_at if instance.state in ("stopped", "failed") else None,
            )
        )
    return found


def desired(store: StateStore) -> dict[tuple[str, str], DesiredCapacity]:
    """Each environment's desired capacity over time, from its `capacity` events (every decision).

    Before its first change an environment had that change's old value; one that never changed has its
    current desired capacity, or (gone, with no change recorded) its first version's initial capacity.
    """
    changes: dict[tuple[str, str], list[tuple[float, int, int]]] = defaultdict(list)
    for event in store.list_events(kind="capacity", limit=_ALL_EVENTS):
        if event.app is not None and event.env is not None:
            changes[(event.app, event.env)].append(
                (event.time, int(event.data["old"]), int(event.data["new"]))
            )
    found: dict[tuple[str, str], DesiredCapacity] = {}
    for (app, env), rows in changes.items():
        found[(app, env)] = DesiredCapacity(rows[0][1], tuple((t, new) for t, _, new in rows))
    for environment in store.list_environments():
        key = (environment.app, environment.name)
        if key not in found:
            found[key] = DesiredCapacity(environment.desired_capacity)
    for instance in store.list_instances():
        key = (instance.app, instance.env)
        if key not in found:
            version = store.get_version(instance.app, instance.version)
            if version is not None:
                found[key] = DesiredCapacity(version.manifest.instances.initial)
    return found


def pricing(store: StateStore) -> Pricing:
    """Each app's prices from its own manifest's `[cost]`: its most recently applied environment's, or
    (an app with no environment left) its latest version's."""
    manifests: dict[str, Manifest] = {}
    for env in sorted(store.list_environments(), key=lambda e: e.updated_at):
        manifests[env.app] = env.manifest
    for app in store.list_apps():
        if app not in manifests:
            latest = store.latest_version(app)
            if latest is not None:
                manifests[app] = latest.manifest
    return Pricing({app: CostConfig.of(manifest.cost) for app, manifest in manifests.items()})


def hourly(store: StateStore) -> list[HourlyLoad]:
    """Observed load per environment and UTC hour, as the autoscaler recorded it."""
    return [
        HourlyLoad(
            app=h.app,
            env=h.env,
            hour=h.hour,
            requests_per_second=h.requests / h.seconds,
            peak_requests_per_second=h.peak_rps,
            p99_latency=h.p99,
            instances=h.instance_seconds / h.seconds,
        )
        for h in store.list_load()
        if h.seconds > 0
    ]


def settings(store: StateStore) -> list[EnvScaling]:
    """Each environment's size, minimum, scaling metric and target, and p99 objective (what advice may change)."""
    return [
        EnvScaling(
            app=env.app,
            env=env.name,
            size=env.manifest.instances.size,
            minimum=env.manifest.instances.min,
            metric=env.manifest.scaling.metric,
            target=env.manifest.scaling.target,
            slo_p99=env.manifest.scaling.slo_p99,
        )
        for env in store.list_environments()
    ]

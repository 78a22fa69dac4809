"""What the bill is computed from, read from the state store: instance lifetimes, observed load, settings."""

from __future__ import annotations

from sprout.cost.advise import EnvScaling, HourlyLoad
from sprout.cost.lifetimes import InstanceLifetime
from sprout.cost.prices import CostConfig
from sprout.state import StateStore


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
    """Each environment's size, minimum, scaling target and p99 objective (what advice may change)."""
    return [
        EnvScaling(
            app=env.app,
            env=env.name,
            size=env.manifest.instances.size,
            minimum=env.manifest.instances.min,
            target=env.manifest.scaling.target,
            slo_p99=env.manifest.scaling.slo_p99,
        )
        for env in store.list_environments()
    ]


def prices(store: StateStore) -> CostConfig:
    """The price table of the most recently applied manifest's `[cost]` (defaults without one)."""
    envs = sorted(store.list_environments(), key=lambda e: e.updated_at)
    return CostConfig.from_mapping(envs[-1].manifest.cost.model_dump() if envs else None)

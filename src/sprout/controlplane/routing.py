"""The routing table the router should serve, computed from the state store (one route per environment)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sprout.controlplane.groups import group_of
from sprout.spec.rules import served_hosts
from sprout.state import Environment, Instance
from sprout.state.models import Group


def route_name(app: str, env: str) -> str:
    """The router's name for an environment's route."""
    return f"{app}-{env}"


def env_hosts(env: Environment) -> list[str]:
    """The host names of an environment: the manifest's for production, `<env>.<host>` for the others."""
    return served_hosts(env.name, env.manifest.hosts)


def default_environment(envs: Iterable[Environment]) -> str | None:
    """The id of the environment the router serves for unknown hosts (the state store's choice), if any."""
    return next((e.id for e in envs if e.default_route), None)


def build_table(
    envs: Iterable[Environment], instances: Iterable[Instance], groups: Mapping[str, list[Group]]
) -> dict[str, Any]:
    """The whole table: per environment its desired groups (weights, versions) and their live instances.

    Instances not yet seen healthy are included with `healthy: false`, so the router's own checks admit
    them; draining, stopped and failed instances are left out, so the router drains them. The default
    route serves the environment the state store names (`sprout route default`).
    """
    envs = sorted(envs, key=lambda e: e.id)
    members: dict[tuple[str, str, str], list[Instance]] = {}
    for instance in instances:
        if instance.state in ("launching", "running"):
            members.setdefault((instance.app, instance.env, group_of(instance)), []).append(instance)
    default = default_environment(envs)
    return {"routes": [_route(env, groups.get(env.id, []), members, env.id == default) for env in envs]}


def _route(
    env: Environment,
    groups: list[Group],
    members: Mapping[tuple[str, str, str], list[Instance]],
    default: bool,
) -> dict[str, Any]:
    manifest = env.manifest
    health = manifest.health
    return {
        "name": route_name(env.app, env.name),
        "hosts": env_hosts(env),
        "default": default,
        "cache": manifest.router.cache_static,
        "max_body": manifest.router.max_body,
        "drain_timeout": manifest.deploy.drain,
        "hsts": int(manifest.tls.hsts or 0) if manifest.tls is not None else 0,
        "health": {
            "path": health.path,
            "interval": health.interval,
            "timeout": health.timeout,
            "healthy_threshold": health.healthy_threshold,
            "unhealthy_threshold": health.unhealthy_threshold,
            "expected_status": [200, 399],
        },
        "groups": [
            {
                "name": group.name,
                "weight": group.weight,
                "version": group.version,
                "targets": [
                    {
                        "id": i.id,
                        "address": i.address,
                        "zone": i.zone,
                        "version": i.version,
                        "healthy": i.health == "healthy",
                    }
                    for i in sorted(members.get((env.app, env.name, group.name), []), key=lambda i: i.id)
                ],
            }
            for group in groups
        ],
    }

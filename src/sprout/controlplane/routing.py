"""The routing table the router should serve, computed from the state store (one route per environment)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sprout.state import Environment, Instance

PRODUCTION = "production"


def route_name(app: str, env: str) -> str:
    """The router's name for an environment's route."""
    return f"{app}-{env}"


def env_hosts(env: Environment) -> list[str]:
    """The host names of an environment: the manifest's for production, `<env>.<host>` for the others."""
    hosts = env.manifest.hosts
    if env.name == PRODUCTION:
        return list(hosts)
    return [f"*.{env.name}.{h[2:]}" if h.startswith("*.") else f"{env.name}.{h}" for h in hosts]


def default_environment(envs: Iterable[Environment]) -> str | None:
    """The id of the environment the router serves for unknown hosts: the most recently created one."""
    newest = max(envs, key=lambda e: (e.created_at, e.id), default=None)
    return newest.id if newest else None


def build_table(envs: Iterable[Environment], instances: Iterable[Instance]) -> dict[str, Any]:
    """The whole table: every environment's live instances in one group "blue"; the newest env is default.

    Instances not yet seen healthy are included with `healthy: false`, so the router's own checks admit
    them; draining, stopped and failed instances are left out, so the router drains them.
    """
    envs = sorted(envs, key=lambda e: e.id)
    by_env: dict[tuple[str, str], list[Instance]] = {}
    for instance in instances:
        if instance.state in ("launching", "running"):
            by_env.setdefault((instance.app, instance.env), []).append(instance)
    newest = default_environment(envs)
    routes = []
    for env in envs:
        manifest = env.manifest
        health = manifest.health
        targets = [
            {
                "id": i.id,
                "address": i.address,
                "zone": i.zone,
                "version": i.version,
                "healthy": i.health == "healthy",
            }
            for i in sorted(by_env.get((env.app, env.name), []), key=lambda i: i.id)
        ]
        routes.append(
            {
                "name": route_name(env.app, env.name),
                "hosts": env_hosts(env),
                "default": env.id == newest,
                "cache": manifest.router.cache_static,
                "max_body": manifest.router.max_body,
                "drain_timeout": manifest.deploy.drain,
                "health": {
                    "path": health.path,
                    "interval": health.interval,
                    "timeout": health.timeout,
                    "healthy_threshold": health.healthy_threshold,
                    "unhealthy_threshold": health.unhealthy_threshold,
                    "expected_status": [200, 399],
                },
                "groups": [
                    {"name": "blue", "weight": 100, "version": env.current_version or "", "targets": targets}
                ],
            }
        )
    return {"routes": routes}

"""The status document of environments (`sprout status --json`): URLs, versions, instances."""

from __future__ import annotations

from typing import Any

from sprout.controlplane.routing import default_environment, env_hosts
from sprout.state import Environment, Instance, StateStore

SHOWN_STATES = ("launching", "running", "draining")


def environments_status(store: StateStore, port: int | None) -> list[dict[str, Any]]:
    """Every environment with its URLs (when the router port is known) and its instances."""
    envs = store.list_environments()
    default = default_environment(envs)
    return [
        environment_status(
            env, store.list_instances(env.app, env.name, states=SHOWN_STATES), port, env.id == default
        )
        for env in envs
    ]


def environment_status(
    env: Environment, instances: list[Instance], port: int | None, default: bool = False
) -> dict[str, Any]:
    """One environment's status document."""
    hosts = env_hosts(env)
    urls = [f"http://{host}:{port}/" for host in hosts if not host.startswith("*.")] if port else []
    desired = env.desired_capacity if env.current_version else 0
    healthy = sum(
        1
        for i in instances
        if i.state == "running" and i.health == "healthy" and i.version == env.current_version
    )
    return {
        "app": env.app,
        "env": env.name,
        "url": urls[0] if urls else None,
        "urls": urls,
        "hosts": hosts,
        "version": env.current_version,
        "desired": desired,
        "healthy": healthy,
        "converged": healthy >= desired and all(i.version == env.current_version for i in instances),
        "status": env.status,
        "default": default,
        "app_dir": str(env.app_dir),
        "instances": [
            {
                "id": i.id,
                "zone": i.zone,
                "version": i.version,
                "host": i.host,
                "port": i.port,
                "pid": i.pid,
                "state": i.state,
                "health": i.health,
                "started_at": i.started_at,
            }
            for i in instances
        ],
    }

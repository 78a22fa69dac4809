"""The status document of environments (`sprout status --json`); `sprout.report` reads figures from it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sprout.controlplane.groups import desired_groups, group_of
from sprout.controlplane.routing import default_environment, env_hosts
from sprout.router.certs import certificates_status
from sprout.state import Environment, Instance, StateStore
from sprout.state.models import Group

SHOWN_STATES = ("launching", "running", "draining")


def environments_status(
    store: StateStore,
    port: int | None,
    checks: Mapping[str, Mapping[str, Any]] | None = None,
    failing: Mapping[str, Mapping[str, Any]] | None = None,
    tls_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Every environment with its URLs (when the router port is known), its instances and certificates.

    The daemon adds what only it knows: each instance's last health check (`checks`, by instance id)
    and each environment whose launches back off (`failing`, by environment id).
    """
    envs = store.list_environments()
    default = default_environment(envs)
    docs = []
    for env in envs:
        doc = environment_status(
            env,
            store.list_instances(env.app, env.name, states=SHOWN_STATES),
            desired_groups(store, env),
            port,
            env.id == default,
        )
        doc["failing"] = dict(failing[env.id]) if failing and env.id in failing else None
        doc["certificates"] = certificates_status(tls_dir, doc["hosts"]) if tls_dir is not None else []
        for instance in doc["instances"]:
            check = (checks or {}).get(instance["id"])
            instance["check"] = dict(check) if check else None
        docs.append(doc)
    return docs


def environment_status(
    env: Environment, instances: list[Instance], groups: list[Group], port: int | None, default: bool = False
) -> dict[str, Any]:
    """One environment's status document."""
    hosts = env_hosts(env)
    urls = [f"http://{host}:{port}/" for host in hosts if not host.startswith("*.")] if port else []
    wanted = {group.name: group for group in groups}
    healthy_in: dict[str, int] = {}
    in_place = True
    for i in instances:
        group = wanted.get(group_of(i))
        if group is None or i.version != group.version:
            in_place = False
        elif i.state == "running" and i.health == "healthy":
            healthy_in[group.name] = healthy_in.get(group.name, 0) + 1
    warm = warm_fleets(groups, healthy_in)
    kept = {fleet["group"] for fleet in warm}
    # Desired and healthy count the groups that serve: a release's new group at weight 0 is shown
    # apart, so that an alert on healthy < desired does not fire on every release.
    serving = [g for g in groups if g.name not in kept and (g.weight > 0 or len(groups) == 1)]
    desired = sum(group.capacity for group in serving)
    healthy = sum(healthy_in.get(group.name, 0) for group in serving)
    releasing = [
        {"group": g.name, "version": g.version, "capacity": g.capacity, "healthy": healthy_in.get(g.name, 0)}
        for g in groups
        if g.name not in kept and g not in serving
    ]
    converged = in_place and all(healthy_in.get(g.name, 0) >= g.capacity for g in groups)
    return {
        "app": env.app,
        "env": env.name,
        "url": urls[0] if urls else None,
        "urls": urls,
        "hosts": hosts,
        "tls": env.manifest.tls is not None,
        "version": env.current_version,
        "desired": desired,
        "healthy": healthy,
        "converged": converged,
        "warm": warm,
        "releasing": releasing,
        "groups": [
            {"name": g.name, "version": g.version, "capacity": g.capacity, "weight": g.weight} for g in groups
        ],
        "status": env.status,
        "default": default,
        "app_dir": str(env.app_dir),
        "instances": [
            {
                "id": i.id,
                "group": group_of(i),
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


def warm_fleets(groups: list[Group], healthy_in: dict[str, int]) -> list[dict[str, Any]]:
    """The groups kept warm at weight 0 for an instant rollback: not desired, retired at `until`."""
    return [
        {
            "group": g.name,
            "version": g.version,
            "capacity": g.capacity,
            "healthy": healthy_in.get(g.name, 0),
            "until": g.standby_until,
        }
        for g in groups
        if g.standby_until is not None
    ]

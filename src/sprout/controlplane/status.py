"""The status document of environments (`sprout status --json`), and live figures from two of its readings."""

from __future__ import annotations

import time
from typing import Any

from sprout.controlplane.groups import desired_groups, group_of
from sprout.controlplane.routing import default_environment, env_hosts
from sprout.router.metrics import CLASSES, Stats
from sprout.state import Environment, Instance, StateStore
from sprout.state.models import Group

SHOWN_STATES = ("launching", "running", "draining")


def environments_status(store: StateStore, port: int | None) -> list[dict[str, Any]]:
    """Every environment with its URLs (when the router port is known) and its instances."""
    envs = store.list_environments()
    default = default_environment(envs)
    return [
        environment_status(
            env,
            store.list_instances(env.app, env.name, states=SHOWN_STATES),
            desired_groups(store, env),
            port,
            env.id == default,
        )
        for env in envs
    ]


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
    desired = sum(group.capacity for group in groups if group.name not in kept)
    healthy = sum(n for name, n in healthy_in.items() if name not in kept)
    converged = in_place and all(healthy_in.get(g.name, 0) >= g.capacity for g in groups)
    return {
        "app": env.app,
        "env": env.name,
        "url": urls[0] if urls else None,
        "urls": urls,
        "hosts": hosts,
        "version": env.current_version,
        "desired": desired,
        "healthy": healthy,
        "converged": converged,
        "warm": warm,
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


def fleet_summary(env: dict[str, Any], utc: bool = False) -> str:
    """`2/2 healthy` for people, with any warm fleet: `2/2 healthy, 2 warm (v1) until 14:05:03`."""
    text = f"{env['healthy']}/{env['desired']} healthy"
    for fleet in env.get("warm") or []:
        stamp = (time.gmtime if utc else time.localtime)(fleet["until"])
        text += (
            f", {fleet['capacity']} warm ({fleet['version']}) until {time.strftime('%H:%M:%S', stamp)}"
            + (" UTC" if utc else "")
        )
    return text


def health_report(before: dict[str, Any], after: dict[str, Any], env: str | None = None) -> dict[str, Any]:
    """Figures per instance and per environment between two `/v1/health` documents."""
    seconds = max(after["time"] - before["time"], 1e-6)
    previous = {
        i["id"]: i.get("router") for e in before["environments"] for i in e["instances"] if i.get("router")
    }
    environments = []
    for e in after["environments"]:
        if env is not None and e["env"] != env:
            continue
        total = Stats()
        instances = []
        for i in e["instances"]:
            doc = i.get("router")
            figures: dict[str, Any] = {"router_state": None}
            if doc is not None:
                stats = Stats.between(previous.get(i["id"]), doc)
                total.add(stats)
                figures = {"router_state": doc["state"], **_figures(stats, seconds)}
            instances.append(
                {k: i[k] for k in ("id", "group", "zone", "version", "state", "health")} | figures
            )
        environments.append(
            {
                "app": e["app"],
                "env": e["env"],
                "url": e["url"],
                "version": e["version"],
                "healthy": e["healthy"],
                "desired": e["desired"],
                "warm": e.get("warm", []),
                "instances": instances,
                "total": _figures(total, seconds),
            }
        )
    return {
        "window": round(seconds, 3),
        "router": after["router"].get("error")
        or ("running" if after["router"]["running"] else "not running"),
        "environments": environments,
    }


def _figures(stats: Stats, seconds: float) -> dict[str, Any]:
    """Rates, status-class shares (None without requests), latency quantiles and in-flight of a window."""
    count = sum(stats.by_class)
    return {
        "requests": count,
        "rps": round(count / seconds, 2),
        "percent": {
            c: round(100 * stats.by_class[i] / count, 1) if count else None for i, c in enumerate(CLASSES)
        },
        "p50_ms": round(stats.quantile(0.50) * 1000, 2) if stats.count else None,
        "p99_ms": round(stats.quantile(0.99) * 1000, 2) if stats.count else None,
        "in_flight": stats.in_flight,
    }


def number(value: float | None, decimals: int) -> str:
    """A live figure for people: fixed decimals, `-` when there is none."""
    return "-" if value is None else f"{value:.{decimals}f}"


def share(value: float | None) -> str:
    """A percentage for people: whole percent, `-` when there were no requests."""
    return "-" if value is None else f"{value:.0f}%"

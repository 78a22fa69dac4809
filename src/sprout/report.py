"""Live figures between two readings of the status document, and how people read them (CLI, dashboard)."""

from __future__ import annotations

import time
from typing import Any

from sprout.router.metrics import CLASSES, Stats


def fleet_summary(env: dict[str, Any], utc: bool = False) -> str:
    """`2/2 healthy` for people, with a release's new group and any warm fleet: `2/2 healthy, releasing
    v3: 1/2 healthy, 2 warm (v1) until 14:05:03`."""
    text = f"{env['healthy']}/{env['desired']} healthy"
    for group in env.get("releasing") or []:
        text += f", releasing {group['version']}: {group['healthy']}/{group['capacity']} healthy"
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
                {k: i[k] for k in ("id", "group", "zone", "version", "state", "health")}
                | {"check": i.get("check")}
                | figures
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

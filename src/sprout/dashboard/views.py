"""What the dashboard shows people: money to four significant digits, releases a rollback undid, and
routine events folded into one row per kind."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

#: Events that happen on every change and say little on their own: a run of them is one row.
ROUTINE = frozenset({"router.table", "router.weights", "release.step", "instance.launch", "instance.stopped"})


def money(value: float) -> str:
    """An amount with at least four significant digits (0.003912, 12.35), cents at least (1234.50)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.2f}"
    decimals = max(2, 3 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def when(stamp: float) -> str:
    """A time for people, in UTC to the second."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def day_and_time(iso: str) -> str:
    """An ISO 8601 UTC time (`2026-12-01T00:00:00Z`) for people: `2026-12-01 00:00 UTC`."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def releases(deployments: list[dict[str, Any]], rollbacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Releases newest first, with instant rollbacks as rows of their own; a release a rollback undid says
    so instead of its old "serves 100%" reason."""
    rows = [dict(d, kind="release") for d in deployments]
    for rollback in rollbacks:
        undone = [
            row
            for row in rows
            if row["kind"] == "release"
            and (row["app"], row["env"]) == (rollback["app"], rollback["env"])
            and row["outcome"] == "succeeded"
            and row["started_at"] < rollback["time"]
        ]
        if undone:
            last = max(undone, key=lambda row: row["started_at"])
            last["outcome"] = "rolled back"
            last["reason"] = (
                f"rolled back to {rollback['version']} by {rollback['user']} at {when(rollback['time'])}"
            )
        rows.append(
            {
                "kind": "rollback",
                "id": "",
                "app": rollback["app"],
                "env": rollback["env"],
                "version": rollback["version"],
                "strategy": "rollback",
                "state": "done",
                "outcome": "instant",
                "started_at": rollback["time"],
                "user": rollback["user"],
                "reason": rollback["summary"],
            }
        )
    return sorted(rows, key=lambda row: row["started_at"], reverse=True)


def folded(events: Iterable[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Events newest first; the routine ones of one kind in one environment as one row (the newest) with
    their count and the time of the oldest."""
    rows: list[dict[str, Any]] = []
    routine: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e["time"], reverse=True):
        key = (event["kind"], event["app"], event["env"])
        if event["kind"] in ROUTINE and key in routine:
            routine[key]["count"] += 1
            routine[key]["first"] = event["time"]
            continue
        row = dict(event, count=1, first=event["time"])
        if event["kind"] in ROUTINE:
            routine[key] = row
        rows.append(row)
    return rows[:limit]

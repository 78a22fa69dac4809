"""Accounting: instance-seconds per app/env/version/zone/size and UTC day."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sprout.cost.lifetimes import InstanceLifetime

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Instance-seconds of one app/env/version/zone/size on one UTC day."""

    app: str
    env: str
    version: str
    zone: str
    size: str
    day: date
    seconds: float


def split_by_day(begin: float, finish: float) -> list[tuple[date, float]]:
    """Seconds of [begin, finish) on each UTC day it touches (split at midnight UTC)."""
    parts: list[tuple[date, float]] = []
    cursor = begin
    while cursor < finish:
        day = datetime.fromtimestamp(cursor, UTC).date()
        midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
        end = min(finish, midnight)
        parts.append((day, end - cursor))
        cursor = end
    return parts


def usage(lifetimes: Iterable[InstanceLifetime], since: float, until: float) -> list[UsageRow]:
    """Instance-seconds inside [since, until), grouped per app/env/version/zone/size/day, sorted."""
    totals: dict[tuple[str, str, str, str, str, date], float] = defaultdict(float)
    for life in lifetimes:
        span = life.clipped(since, until)
        if span is None:
            continue
        for day, seconds in split_by_day(*span):
            totals[(life.app, life.env, life.version, life.zone, life.size, day)] += seconds
    return [UsageRow(*key, seconds) for key, seconds in sorted(totals.items())]

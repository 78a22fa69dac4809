"""Scheduled actions: which `[[scaling.schedule]]` entries hold at an instant (cron in UTC).

As in EC2 Auto Scaling, an action sets its fields when it fires and they stay set until another action
fires; an action with a `duration` holds only for that long after each firing. Per field, the action
that fired last wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from sprout.spec.scaling import ScheduleEntry


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """The fields the schedule sets now, and when the action setting `desired` fired."""

    minimum: int | None = None
    maximum: int | None = None
    desired: int | None = None
    desired_fired_at: float | None = None
    reason: str = ""


NO_SCHEDULE = ScheduleState()


def last_firing(action: ScheduleEntry, now: datetime) -> datetime | None:
    """The latest time at or before `now` that the action fired, or None if it never has."""
    if action.at is not None:
        return action.at if action.at <= now else None
    assert action.cron is not None
    # croniter's get_prev is strictly before its start; one second later includes a firing exactly at `now`.
    fired: datetime = croniter(action.cron, now + timedelta(seconds=1)).get_prev(datetime)
    return fired


def next_change(actions: Sequence[ScheduleEntry], now: datetime) -> datetime | None:
    """The next instant after `now` at which an action fires or a `duration` ends."""
    candidates: list[datetime] = []
    for action in actions:
        if action.at is not None:
            if action.at > now:
                candidates.append(action.at)
        else:
            assert action.cron is not None
            candidates.append(croniter(action.cron, now).get_next(datetime))
        fired = last_firing(action, now)
        if fired is not None and action.duration is not None:
            end = fired + timedelta(seconds=action.duration)
            if end > now:
                candidates.append(end)
    return min(candidates) if candidates else None


def active_schedule(actions: Sequence[ScheduleEntry], now: float) -> ScheduleState:
    """The min/max/desired the schedule imposes at epoch second `now`."""
    if not actions:
        return NO_SCHEDULE
    at = datetime.fromtimestamp(now, UTC)
    live: list[tuple[datetime, ScheduleEntry]] = []
    for action in actions:
        fired = last_firing(action, at)
        if fired is None:
            continue
        if action.duration is not None and at >= fired + timedelta(seconds=action.duration):
            continue
        live.append((fired, action))
    live.sort(key=lambda pair: pair[0])
    minimum = maximum = desired = None
    desired_at: float | None = None
    labels: list[str] = []
    for fired, action in live:
        if action.min is not None:
            minimum = action.min
        if action.max is not None:
            maximum = action.max
        if action.desired is not None:
            desired, desired_at = action.desired, fired.timestamp()
        labels.append(f"{action.label} since {fired.isoformat()}")
    return ScheduleState(minimum, maximum, desired, desired_at, "; ".join(labels))

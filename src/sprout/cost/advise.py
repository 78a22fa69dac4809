"""`sprout cost --advise`: recommendations from observed load, each with its estimated monthly saving.

Two rules, both conservative, each reading `[scaling] target` in the unit of its `metric`:
- **quiet hours**: for each hour of the day, the most instances the observed peak rate needed at the
  target (`ceil(peak / per_instance)`, at least 1). With `metric = "requests_per_instance"` an instance
  carries `target` req/s; with `cpu`, `p95_latency` or `concurrency` the target is not a rate, so what one
  instance carries at the target is learned from the busy hours (fleet above `min`, sized by the scaler
  at its target): their req/s per serving instance. Without a busy hour there is nothing to learn from
  and no quiet-hours advice. A run of at least two hours where that is below `min`
  (at the same hour on every observed day) can run a lower `min` through a scheduled action;
  saving = (min - needed) instances x hours per day x 730/24 days x price.
- **latency headroom**: if in every hour the fleet was above `min` (sized by the target) the p99 stayed
  at or below half the SLO, the target can rise by 25 %; saving = the busy hours' instance-hours x
  (1 - old/new target), scaled from the observed hours to a 730-hour month.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sprout.cost.report import Pricing

HOURS_PER_MONTH = 730.0
"""Savings are quoted per month of 730 hours, the month AWS prices by."""

QUIET_MIN_HOURS = 2
LATENCY_HEADROOM = 0.5
TARGET_RAISE = 1.25


@dataclass(frozen=True, slots=True)
class HourlyLoad:
    """One UTC hour of an environment's router metrics."""

    app: str
    env: str
    hour: float
    """Epoch second at which the hour starts."""
    requests_per_second: float
    peak_requests_per_second: float
    p99_latency: float
    """Seconds."""
    instances: float
    """Mean serving instances over the hour."""


@dataclass(frozen=True, slots=True)
class EnvScaling:
    """The settings the advice is about: size, `[instances] min`, `[scaling] target`, the p99 SLO."""

    app: str
    env: str
    size: str
    minimum: int
    metric: str
    """The `[scaling] metric` the target is in: requests_per_instance, concurrency, cpu or p95_latency."""
    target: float
    slo_p99: float
    """Seconds."""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One concrete change, why, and what it would save per month."""

    app: str
    env: str
    kind: str
    message: str
    monthly_saving: float
    change: dict[str, Any] = field(default_factory=dict)
    """The manifest change, as TOML keys and values."""

    def to_json(self) -> dict[str, Any]:
        """The recommendation as a JSON object."""
        return {
            "app": self.app,
            "env": self.env,
            "kind": self.kind,
            "message": self.message,
            "monthly_saving": round(self.monthly_saving, 4),
            "change": self.change,
        }


def advise(
    history: Sequence[HourlyLoad], settings: Sequence[EnvScaling], prices: Pricing
) -> list[Recommendation]:
    """Every recommendation the observed history supports, largest saving first."""
    by_env: dict[tuple[str, str], list[HourlyLoad]] = defaultdict(list)
    for sample in history:
        by_env[(sample.app, sample.env)].append(sample)
    found: list[Recommendation] = []
    for env in settings:
        samples = by_env.get((env.app, env.env), [])
        if samples:
            found += quiet_hours(samples, env, prices)
            found += latency_headroom(samples, env, prices)
    return sorted(found, key=lambda r: -r.monthly_saving)


def quiet_hours(samples: Sequence[HourlyLoad], env: EnvScaling, prices: Pricing) -> list[Recommendation]:
    """Lower `min` in runs of hours where the observed peaks needed fewer instances."""
    per_instance = carried_per_instance(samples, env)
    if per_instance is None:
        return []
    needed: dict[int, int] = {}
    days: dict[int, set[str]] = defaultdict(set)
    for sample in samples:
        when = datetime.fromtimestamp(sample.hour, UTC)
        wanted = max(1, math.ceil(sample.peak_requests_per_second / per_instance - 1e-9))
        needed[when.hour] = max(needed.get(when.hour, 0), wanted)
        days[when.hour].add(when.date().isoformat())
    quiet = [h in needed and needed[h] < env.minimum for h in range(24)]
    recommendations = []
    for start, length in _runs(quiet):
        if length < QUIET_MIN_HOURS:
            continue
        hours = [(start + i) % 24 for i in range(length)]
        lower = max(needed[h] for h in hours)
        seen = min(len(days[h]) for h in hours)
        saving = (env.minimum - lower) * length * HOURS_PER_MONTH / 24.0 * prices.hourly(env.app, env.size)
        end = (start + length) % 24
        recommendations.append(
            Recommendation(
                env.app,
                env.env,
                "lower_min_in_quiet_hours",
                f"{env.app}/{env.env}: from {start:02d}:00 to {end:02d}:00 UTC the peak load needed at most "
                f"{lower} instance(s) on each of {seen} observed day(s), but min is {env.minimum}: "
                f"schedule min = {lower} for those {length} hours",
                saving,
                {"scaling.schedule": [{"cron": f"0 {start} * * *", "duration": f"{length}h", "min": lower}]},
            )
        )
    return recommendations


def carried_per_instance(samples: Sequence[HourlyLoad], env: EnvScaling) -> float | None:
    """Req/s one instance carries at the target: the target itself for `requests_per_instance`, else
    learned from the busy hours (the scaler sized the fleet by the metric at its target); None if unknown."""
    if env.metric == "requests_per_instance":
        return env.target
    busy = [s for s in samples if s.instances > env.minimum and s.requests_per_second > 0]
    if not busy:
        return None
    return sum(s.requests_per_second for s in busy) / sum(s.instances for s in busy)


def latency_headroom(samples: Sequence[HourlyLoad], env: EnvScaling, prices: Pricing) -> list[Recommendation]:
    """Raise the target when p99 stayed far below the SLO in every hour the target sized the fleet."""
    busy = [s for s in samples if s.instances > env.minimum]
    if not busy:
        return []
    worst = max(s.p99_latency for s in busy)
    if worst > LATENCY_HEADROOM * env.slo_p99:
        return []
    raised = round(env.target * TARGET_RAISE, 2)
    fewer = sum(min(s.instances - env.minimum, s.instances * (1 - env.target / raised)) for s in busy)
    observed_hours = len({s.hour for s in samples})
    saving = fewer * HOURS_PER_MONTH / observed_hours * prices.hourly(env.app, env.size)
    return [
        Recommendation(
            env.app,
            env.env,
            "raise_target",
            f"{env.app}/{env.env}: p99 stayed at or below {worst * 1000:.0f} ms against the "
            f"{env.slo_p99 * 1000:.0f} ms SLO in all {len(busy)} busy hour(s): raise the {env.metric} target "
            f"from {_shown(env.metric, env.target)} to {_shown(env.metric, raised)}",
            saving,
            {"scaling.target": raised},
        )
    ]


def _shown(metric: str, value: float) -> str:
    """A target in its metric's unit."""
    unit = {"requests_per_instance": " req/s per instance", "concurrency": " requests in flight per instance"}
    if metric == "cpu":
        return f"{value:g} % CPU"
    if metric == "p95_latency":
        return f"{value * 1000:g} ms p95"
    return f"{value:g}{unit[metric]}"


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs of True in a circular 24-hour day, as (start hour, length)."""
    if all(flags):
        return [(0, 24)]
    # Start just after a False so a run across midnight is not cut in two.
    origin = next(i for i in range(24) if not flags[i]) + 1
    runs: list[tuple[int, int]] = []
    start, length = 0, 0
    for offset in range(24):
        hour = (origin + offset) % 24
        if flags[hour]:
            if length == 0:
                start = hour
            length += 1
        elif length:
            runs.append((start, length))
            length = 0
    if length:
        runs.append((start, length))
    return runs

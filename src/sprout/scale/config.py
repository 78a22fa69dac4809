"""The scaler's settings: the manifest's `[scaling]` section and `[instances]` bounds as frozen values.

Field names map 1:1 onto the manifest keys, so the manifest model converts with
`ScalingConfig.from_mapping(manifest.scaling.model_dump())`:

```toml
[instances]
min = 2                             # Limits.minimum
max = 10                            # Limits.maximum

[scaling]
enabled = true                      # false: no metric policy; bounds and schedules still apply
metric = "requests_per_instance"    # | concurrency | cpu | p95_latency
target = 50                         # per serving instance; omit for step-only or schedule-only scaling
tolerance = 0.1                     # no change while metric/target is within 1 ± tolerance
scale_in_stabilization = "300s"     # scale in only to the highest recommendation of this window
warmup = "30s"                      # launch → serving; the predictive horizon
cooldown = "0s"                     # minimum time between two scale-ins
predictive = false                  # Holt's linear forecast scales out ahead of a rise
slo_p99 = "500ms"                   # the latency objective `sprout cost --advise` keeps

[[scaling.step]]                    # metric per serving instance in [lower, upper) → change
lower = 80
change = 50                         # instances, or with percent = true a percentage
percent = true                      # (also accepted: change = "+50%")
[[scaling.step]]
upper = 10
change = -1

[[scaling.schedule]]
cron = "30 19 * 6 *"                # or at = "2026-06-14T19:30:00+00:00"
duration = "3h"                     # optional: without it the action holds until another one fires
min = 8                             # any of min, max, desired
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from sprout.errors import ManifestError
from sprout.spec import units

METRICS = ("requests_per_instance", "concurrency", "cpu", "p95_latency")

_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_CHANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_duration(value: object, where: str) -> float:
    """Seconds from a manifest duration (`"300s"`, `"5m"`, `"1h"`, `"2d"`, `"250ms"`: `sprout.spec.units`),
    a number of seconds or a bare number in a string; errors name the scaling key."""
    if isinstance(value, bool):
        raise ManifestError("sprout.toml", [f'{where}: expected a duration like "300s", got {value!r}'])
    if isinstance(value, str) and _NUMBER.match(value):
        value = float(value)
    if isinstance(value, int | float) and value < 0:
        raise ManifestError("sprout.toml", [f"{where}: a duration cannot be negative ({value!r})"])
    try:
        return units.parse_duration(value)
    except ValueError:
        raise ManifestError(
            "sprout.toml", [f'{where}: {value!r} is not a duration; write it like "300s", "5m" or "1h"']
        ) from None


@dataclass(frozen=True, slots=True)
class Limits:
    """The fleet's bounds from `[instances] min/max`."""

    minimum: int = 1
    maximum: int = 10

    def __post_init__(self) -> None:
        if self.minimum < 0 or self.maximum < self.minimum:
            raise ManifestError(
                "sprout.toml",
                [f"instances: need 0 <= min <= max, got min={self.minimum}, max={self.maximum}"],
            )

    def clamp(self, n: int) -> int:
        """`n` moved into [minimum, maximum]."""
        return max(self.minimum, min(self.maximum, n))


@dataclass(frozen=True, slots=True)
class StepAdjustment:
    """One step: when the metric per serving instance is in [lower, upper), change the fleet."""

    change: float
    percent: bool = False
    lower: float | None = None
    upper: float | None = None

    def matches(self, value: float) -> bool:
        """Whether `value` falls in this step's interval."""
        return (self.lower is None or value >= self.lower) and (self.upper is None or value < self.upper)

    def apply(self, serving: int) -> int:
        """The fleet size this step asks for, starting from `serving` instances."""
        if not self.percent:
            return serving + int(self.change)
        delta = serving * self.change / 100.0
        # A percentage step always moves by at least one instance, as EC2 Auto Scaling's MinAdjustmentMagnitude.
        whole = max(1, round(abs(delta)))
        return serving + whole if delta > 0 else serving - whole


@dataclass(frozen=True, slots=True)
class ScheduledAction:
    """A `[[scaling.schedule]]` entry: at each `cron` match or at the `at` instant, set min/max/desired."""

    cron: str | None = None
    at: datetime | None = None
    minimum: int | None = None
    maximum: int | None = None
    desired: int | None = None
    duration: float | None = None

    @property
    def label(self) -> str:
        """How the action is named in decision reasons."""
        return (
            f"cron {self.cron!r}"
            if self.cron is not None
            else f"at {self.at.isoformat() if self.at else '?'}"
        )


@dataclass(frozen=True, slots=True)
class ScalingConfig:
    """The `[scaling]` section; see the module docstring for each key."""

    enabled: bool = True
    metric: str = "requests_per_instance"
    target: float | None = None
    tolerance: float = 0.1
    scale_in_stabilization: float = 300.0
    warmup: float = 30.0
    cooldown: float = 0.0
    predictive: bool = False
    slo_p99: float = 0.5
    step: tuple[StepAdjustment, ...] = field(default=())
    schedule: tuple[ScheduledAction, ...] = field(default=())

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.metric not in METRICS:
            problems.append(f"scaling.metric: {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.target is not None and self.target <= 0:
            problems.append(f"scaling.target: must be above 0, got {self.target}")
        if not 0 <= self.tolerance < 1:
            problems.append(f"scaling.tolerance: must be in [0, 1), got {self.tolerance}")
        if problems:
            raise ManifestError("sprout.toml", problems)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ScalingConfig:
        """Build from the manifest's `[scaling]` table (durations as strings or seconds)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ManifestError(
                "sprout.toml",
                [f"scaling.{key}: unknown key; known keys are {', '.join(sorted(known))}" for key in unknown],
            )
        values: dict[str, Any] = {}
        for key in ("enabled", "metric", "predictive"):
            if data.get(key) is not None:
                values[key] = data[key]
        for key in ("target", "tolerance"):
            if data.get(key) is not None:
                values[key] = float(data[key])
        for key in ("scale_in_stabilization", "warmup", "cooldown", "slo_p99"):
            if data.get(key) is not None:
                values[key] = parse_duration(data[key], f"scaling.{key}")
        values["step"] = tuple(_step(s, i) for i, s in enumerate(data.get("step") or ()))
        values["schedule"] = tuple(_scheduled(s, i) for i, s in enumerate(data.get("schedule") or ()))
        return cls(**values)


def _step(data: Mapping[str, Any], index: int) -> StepAdjustment:
    where = f"scaling.step[{index}]"
    raw = data.get("change")
    match = _CHANGE.match(str(raw)) if raw is not None and not isinstance(raw, bool) else None
    if match is None or float(match.group(1)) == 0:
        raise ManifestError(
            "sprout.toml", [f'{where}.change: {raw!r} is not a change; write it like "+2", -1 or "+50%"']
        )
    lower, upper = data.get("lower"), data.get("upper")
    if lower is None and upper is None:
        raise ManifestError("sprout.toml", [f"{where}: give `lower`, `upper` or both"])
    return StepAdjustment(
        change=float(match.group(1)),
        percent=match.group(2) == "%" or bool(data.get("percent")),
        lower=None if lower is None else float(lower),
        upper=None if upper is None else float(upper),
    )


def _scheduled(data: Mapping[str, Any], index: int) -> ScheduledAction:
    where = f"scaling.schedule[{index}]"
    cron, at = data.get("cron"), data.get("at")
    if (cron is None) == (at is None):
        raise ManifestError("sprout.toml", [f"{where}: give exactly one of `cron` or `at`"])
    if cron is not None and not croniter.is_valid(str(cron)):
        raise ManifestError("sprout.toml", [f"{where}.cron: {cron!r} is not a valid cron expression"])
    when: datetime | None = None
    if at is not None:
        try:
            when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        except ValueError:
            raise ManifestError(
                "sprout.toml", [f'{where}.at: {at!r} is not an ISO time like "2026-06-14T19:30:00+00:00"']
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    action = ScheduledAction(
        cron=None if cron is None else str(cron),
        at=when,
        minimum=_optional_int(data.get("min")),
        maximum=_optional_int(data.get("max")),
        desired=_optional_int(data.get("desired")),
        duration=None
        if data.get("duration") is None
        else parse_duration(data["duration"], f"{where}.duration"),
    )
    if action.minimum is None and action.maximum is None and action.desired is None:
        raise ManifestError("sprout.toml", [f"{where}: set at least one of `min`, `max` or `desired`"])
    return action


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))

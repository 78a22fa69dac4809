"""The `[scaling]` section: target tracking, step, scheduled and predictive policies."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, Self

from croniter import croniter
from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from sprout.spec.base import Section, is_stored
from sprout.spec.units import Duration

ScalingMetric = Literal["requests_per_instance", "concurrency", "cpu", "p95_latency"]
METRICS: tuple[ScalingMetric, ...] = ("requests_per_instance", "concurrency", "cpu", "p95_latency")

#: The most instances one environment may run: the bound of `[instances]` min and max and of every
#: scheduled capacity (a typo such as `min = 300` must not start 300 local instances).
MAX_INSTANCES = 100

_CHANGE = re.compile(r"^\s*([+-]?\d+)\s*(%?)\s*$")


class ScheduleEntry(Section):
    """A scheduled action: at a cron time or an instant, set min/max/desired capacity."""

    cron: str | None = Field(None, description='Cron expression (UTC), e.g. "30 19 * 6 *".')
    at: datetime | None = Field(None, description="One-off ISO 8601 time.")
    min: int | None = Field(None, ge=0, le=MAX_INSTANCES)
    max: int | None = Field(None, ge=1, le=MAX_INSTANCES)
    desired: int | None = Field(None, ge=0, le=MAX_INSTANCES)
    duration: Duration | None = Field(
        None, description="How long the action holds (default: until the next)."
    )

    @field_validator("min", "max", "desired", mode="before")
    @classmethod
    def _stored_at_bound(cls, value: object, info: ValidationInfo) -> object:
        # A schedule stored by a Sprout from before this bound keeps its environment readable: it is read
        # at the bound (which the fleet could never exceed), while new input above it is refused.
        above = isinstance(value, int) and not isinstance(value, bool) and value > MAX_INSTANCES
        return MAX_INSTANCES if above and is_stored(info) else value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f'invalid cron expression "{value}" (5 fields: minute hour day month weekday)')
        return value

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A time without an offset is UTC, as cron expressions are.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        if (self.cron is None) == (self.at is None):
            raise ValueError('give exactly one of "cron" or "at"')
        if self.min is None and self.max is None and self.desired is None:
            raise ValueError('set at least one of "min", "max" or "desired"')
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    @property
    def label(self) -> str:
        """How the action is named in decision reasons."""
        return (
            f"cron {self.cron!r}"
            if self.cron is not None
            else f"at {self.at.isoformat() if self.at else '?'}"
        )


class StepAdjustment(Section):
    """A step policy row: when the metric is in [lower, upper), change capacity by `change`."""

    lower: float | None = None
    upper: float | None = None
    change: int = Field(
        strict=True,
        description='Instances to add (positive) or remove (negative); "+50%" means 50 with percent = true.',
    )
    percent: StrictBool = Field(False, description="Read `change` as a percentage of current capacity.")

    @model_validator(mode="before")
    @classmethod
    def _change_text(cls, data: Any) -> Any:
        """`change = "+2"`, `"-1"` or `"+50%"` (the last sets `percent`)."""
        if not isinstance(data, dict) or not isinstance(data.get("change"), str):
            return data
        match = _CHANGE.match(data["change"])
        if match is None:
            raise ValueError(f'change {data["change"]!r} is not a change; write it like "+2", -1 or "+50%"')
        percent = match.group(2) == "%"
        return {**data, "change": int(match.group(1)), "percent": percent or data.get("percent", False)}

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.lower is None and self.upper is None:
            raise ValueError('give "lower", "upper" or both (the metric interval this step applies to)')
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower:g}) must be below upper ({self.upper:g})")
        if self.change == 0:
            raise ValueError('change 0 changes nothing; write it like "+2", -1 or "+50%"')
        return self

    def matches(self, value: float) -> bool:
        """Whether `value` falls in this step's interval [lower, upper)."""
        return (self.lower is None or value >= self.lower) and (self.upper is None or value < self.upper)

    def apply(self, serving: int) -> int:
        """The fleet size this step asks for, starting from `serving` instances."""
        if not self.percent:
            return serving + self.change
        delta = serving * self.change / 100.0
        # A percentage step always moves by at least one instance, as EC2 Auto Scaling's MinAdjustmentMagnitude.
        whole = max(1, round(abs(delta)))
        return serving + whole if delta > 0 else serving - whole


class ScalingSection(Section):
    """How capacity follows load between `[instances] min` and `max`."""

    enabled: StrictBool = True
    metric: ScalingMetric = "requests_per_instance"
    target: float = Field(50.0, gt=0, description="Target value of the metric per instance.")
    tolerance: float = Field(0.1, ge=0, lt=1, description="No change while within ±tolerance of target.")
    scale_in_stabilization: Duration = Field(300.0, description="Scale in only after this long.")
    warmup: Duration = Field(30.0, description="A new instance's metrics are ignored this long.")
    cooldown: Duration = Field(0.0, description="Pause between two scale-in actions.")
    predictive: StrictBool = Field(False, description="Scale ahead of a rising trend (never below tracking).")
    slo_p99: Duration = Field(0.5, description="p99 latency objective; `sprout cost --advise` keeps it.")
    max_scale_out_percent: float = Field(
        100.0, gt=0, description="One decision adds at most this percentage of the fleet (100: doubles it)..."
    )
    max_scale_out_instances: int = Field(
        4, ge=1, description="...or this many instances, whichever is larger (the Kubernetes HPA's default)."
    )
    step: list[StepAdjustment] = Field(default_factory=list)
    schedule: list[ScheduleEntry] = Field(default_factory=list)

"""The `[scaling]` section: target tracking, step, scheduled and predictive policies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from croniter import croniter
from pydantic import Field, StrictBool, field_validator, model_validator

from sprout.spec.base import Section
from sprout.spec.units import Duration

ScalingMetric = Literal["requests_per_instance", "concurrency", "cpu", "p95_latency"]


class ScheduleEntry(Section):
    """A scheduled action: at a cron time or an instant, set min/max/desired capacity."""

    cron: str | None = Field(None, description='Cron expression (UTC), e.g. "30 19 * 6 *".')
    at: datetime | None = Field(None, description="One-off ISO 8601 time.")
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=1)
    desired: int | None = Field(None, ge=0)
    duration: Duration | None = Field(
        None, description="How long the action holds (default: until the next)."
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f'invalid cron expression "{value}" (5 fields: minute hour day month weekday)')
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        if (self.cron is None) == (self.at is None):
            raise ValueError('give exactly one of "cron" or "at"')
        if self.min is None and self.max is None and self.desired is None:
            raise ValueError('set at least one of "min", "max" or "desired"')
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class StepAdjustment(Section):
    """A step policy row: when the metric is in [lower, upper), change capacity by `change`."""

    lower: float | None = None
    upper: float | None = None
    change: int = Field(description="Instances to add (positive) or remove (negative).")
    percent: StrictBool = Field(False, description="Read `change` as a percentage of current capacity.")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self


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
    step: list[StepAdjustment] = Field(default_factory=list)
    schedule: list[ScheduleEntry] = Field(default_factory=list)

"""`ScalingConfig.from_mapping`: the manifest's `[scaling]` section, its defaults and its errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sprout.errors import ManifestError
from sprout.scale.config import Limits, ScalingConfig, ScheduledAction, StepAdjustment, parse_duration


def test_defaults() -> None:
    config = ScalingConfig.from_mapping({})
    assert config == ScalingConfig(
        metric="requests_per_instance",
        target=None,
        tolerance=0.1,
        scale_in_stabilization=300.0,
        warmup=30.0,
        cooldown=0.0,
        predictive=False,
    )


def test_full_section() -> None:
    config = ScalingConfig.from_mapping(
        {
            "metric": "cpu",
            "target": 60,
            "tolerance": 0.05,
            "scale_in_stabilization": "2m",
            "warmup": "30s",
            "cooldown": 90,
            "predictive": True,
            "step": [{"lower": 80, "change": "+50%"}, {"upper": 10, "change": -1}],
            "schedule": [
                {"cron": "30 19 * 6 *", "min": 8, "duration": "3h"},
                {"at": "2026-12-24T18:00:00", "max": 2, "desired": 1},
            ],
        }
    )
    assert config.metric == "cpu"
    assert (config.target, config.tolerance) == (60.0, 0.05)
    assert (config.scale_in_stabilization, config.warmup, config.cooldown) == (120.0, 30.0, 90.0)
    assert config.step == (
        StepAdjustment(change=50.0, percent=True, lower=80.0),
        StepAdjustment(change=-1.0, upper=10.0),
    )
    assert config.schedule == (
        ScheduledAction(cron="30 19 * 6 *", minimum=8, duration=10800.0),
        ScheduledAction(at=datetime(2026, 12, 24, 18, tzinfo=UTC), maximum=2, desired=1),
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"metric": "qps"},
            "scaling.metric: 'qps' is not one of requests_per_instance, concurrency, cpu, p95_latency",
        ),
        ({"target": 0}, "scaling.target: must be above 0, got 0.0"),
        (
            {"warmup": "soon"},
            'scaling.warmup: \'soon\' is not a duration; write it like "300s", "5m" or "1h"',
        ),
        ({"colldown": "1m"}, "scaling.colldown: unknown key; known keys are cooldown, enabled, metric"),
        ({"step": [{"lower": 1, "change": "lots"}]}, "scaling.step[0].change: 'lots' is not a change"),
        ({"step": [{"change": 1}]}, "scaling.step[0]: give `lower`, `upper` or both"),
        ({"schedule": [{"min": 1}]}, "scaling.schedule[0]: give exactly one of `cron` or `at`"),
        (
            {"schedule": [{"cron": "61 * * * *", "min": 1}]},
            "scaling.schedule[0].cron: '61 * * * *' is not a valid cron",
        ),
        (
            {"schedule": [{"at": "tomorrow", "min": 1}]},
            "scaling.schedule[0].at: 'tomorrow' is not an ISO time",
        ),
        (
            {"schedule": [{"cron": "* * * * *"}]},
            "scaling.schedule[0]: set at least one of `min`, `max` or `desired`",
        ),
    ],
)
def test_errors_name_the_field(section: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        ScalingConfig.from_mapping(section)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("300s", 300.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), (45, 45.0), ("2d", 172800.0)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "x") == seconds


def test_limits_validate_and_clamp() -> None:
    assert Limits(2, 5).clamp(9) == 5
    assert Limits(2, 5).clamp(0) == 2
    with pytest.raises(ManifestError, match="instances: need 0 <= min <= max, got min=3, max=2"):
        Limits(3, 2)


def test_the_manifest_model_maps_one_to_one() -> None:
    from sprout.spec.scaling import ScalingSection

    section = ScalingSection.model_validate(
        {
            "target": 30,
            "scale_in_stabilization": "1m",
            "step": [{"lower": 80, "change": 50, "percent": True}],
            "schedule": [{"at": "2026-06-14T19:30:00+00:00", "min": 8, "duration": "3h"}],
        }
    )
    config = ScalingConfig.from_mapping(section.model_dump())
    assert (config.target, config.scale_in_stabilization, config.enabled) == (30.0, 60.0, True)
    assert config.step == (StepAdjustment(change=50.0, percent=True, lower=80.0),)
    assert config.schedule == (
        ScheduledAction(at=datetime(2026, 6, 14, 19, 30, tzinfo=UTC), minimum=8, duration=10800.0),
    )

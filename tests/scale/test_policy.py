"""Table-driven tests of the scaling policies through the daemon's `Scaler` and the pure `decide`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from sprout.scale import Decision, Fleet, Limits, MetricSample, Scaler, ScalingConfig, decide
from sprout.scale.config import ScheduledAction, StepAdjustment
from sprout.scale.model import Memory

T0 = datetime(2026, 6, 14, 18, 0, tzinfo=UTC).timestamp()


@dataclass
class Case:
    """A run of one scaler: per-second load, and what the decisions must show."""

    name: str
    config: ScalingConfig
    limits: Limits
    loads: list[float]
    launch_delay: int = 0
    serving: int = 1
    expect: dict[int, int] = field(default_factory=dict)
    """second → desired capacity at that second."""


def replay(case: Case) -> list[Decision]:
    """Feed the scaler one second at a time; launched instances serve after `launch_delay`."""
    scaler = Scaler(case.config, case.limits)
    serving, launching = case.serving, []
    decisions = []
    for t, load in enumerate(case.loads):
        serving += sum(1 for ready in launching if ready <= t)
        launching = [ready for ready in launching if ready > t]
        decision = scaler.observe(T0 + t, MetricSample(request_rate=load), Fleet(serving, len(launching)))
        decisions.append(decision)
        change = decision.desired - serving - len(launching)
        if change > 0:
            launching += [t + case.launch_delay] * change
        elif change < 0:
            drop_launching = min(-change, len(launching))
            launching = launching[: len(launching) - drop_launching]
            serving += change + drop_launching
    return decisions


def noisy(level: float, seconds: int, noise: float = 0.06, seed: int = 7) -> list[float]:
    """A flat load with multiplicative noise, like the shared traces."""
    rng = random.Random(seed)
    return [level * (1 + rng.uniform(-noise, noise)) for _ in range(seconds)]


TRACKING = ScalingConfig(target=50, scale_in_stabilization=300)

CASES = [
    Case(
        "noisy flat load does not flap",
        TRACKING,
        Limits(1, 20),
        noisy(200, 3600),
        serving=4,
        expect={t: 4 for t in range(0, 3600, 60)},
    ),
    Case(
        "scale-out is immediate",
        TRACKING,
        Limits(1, 20),
        [100.0] * 10 + [400.0] * 10,
        serving=2,
        expect={9: 2, 10: 8, 19: 8},
    ),
    Case(
        "scale-in waits for the stabilization window",
        TRACKING,
        Limits(1, 20),
        [400.0] * 100 + [100.0] * 400,
        serving=8,
        expect={100: 8, 398: 8, 399: 2, 499: 2},
    ),
    Case(
        "launching instances count: a spike launches once",
        TRACKING,
        Limits(1, 50),
        [100.0] * 5 + [1000.0] * 120,
        launch_delay=60,
        serving=2,
        expect={5: 20, 6: 20, 30: 20, 64: 20, 65: 20, 124: 20},
    ),
    Case(
        "max caps a spike",
        TRACKING,
        Limits(1, 6),
        [100.0] * 5 + [1000.0] * 5,
        serving=2,
        expect={5: 6, 9: 6},
    ),
    Case(
        "min holds through a quiet spell",
        TRACKING,
        Limits(3, 20),
        [10.0] * 600,
        serving=3,
        expect={0: 3, 599: 3},
    ),
    Case(
        "the fleet is raised to min at once",
        TRACKING,
        Limits(3, 20),
        [10.0] * 5,
        serving=1,
        expect={0: 3},
    ),
    Case(
        "a cron action raises min before kick-off, a later one lowers it",
        ScalingConfig(
            target=50,
            scale_in_stabilization=0,
            schedule=(
                ScheduledAction(cron="30 18 * * *", minimum=8),
                ScheduledAction(cron="0 19 * * *", minimum=2),
            ),
        ),
        Limits(2, 20),
        [50.0] * 3700,
        serving=2,
        expect={0: 2, 1799: 2, 1800: 8, 3599: 8, 3600: 2},
    ),
    Case(
        "an `at` action with a duration holds only that long",
        ScalingConfig(
            target=50,
            scale_in_stabilization=0,
            schedule=(
                ScheduledAction(at=datetime(2026, 6, 14, 18, 10, tzinfo=UTC), minimum=5, duration=120),
            ),
        ),
        Limits(1, 20),
        [20.0] * 900,
        serving=1,
        expect={599: 1, 600: 5, 719: 5, 720: 1},
    ),
    Case(
        "a scheduled max caps target tracking",
        ScalingConfig(target=50, schedule=(ScheduledAction(cron="0 18 * * *", maximum=3),)),
        Limits(1, 20),
        [500.0] * 10,
        serving=1,
        expect={0: 3, 9: 3},
    ),
    Case(
        "a scheduled desired is held for the stabilization window, then tracking takes over",
        ScalingConfig(
            target=50,
            scale_in_stabilization=60,
            schedule=(ScheduledAction(at=datetime(2026, 6, 14, 18, 1, tzinfo=UTC), desired=10),),
        ),
        Limits(1, 20),
        [50.0] * 300,
        serving=1,
        expect={59: 1, 60: 10, 119: 10, 178: 10, 179: 1},
    ),
    Case(
        "step policy adds by percent; scale-ins wait for the cooldown",
        ScalingConfig(
            step=(
                StepAdjustment(change=50, percent=True, lower=80),
                StepAdjustment(change=-1, upper=20),
            ),
            cooldown=60,
            scale_in_stabilization=0,
        ),
        Limits(1, 20),
        [400.0] * 3 + [30.0] * 200,
        serving=4,
        expect={0: 6, 1: 6, 2: 6, 3: 5, 4: 5, 62: 5, 63: 4, 123: 3},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy_table(case: Case) -> None:
    decisions = replay(case)
    got = {t: decisions[t].desired for t in case.expect}
    assert got == case.expect


def test_no_flapping_means_no_change_at_all() -> None:
    decisions = replay(CASES[0])
    assert {d.desired for d in decisions} == {4}
    assert all("within ±10%" in d.reason for d in decisions)


def test_tolerance_band_counts_launching_instances_for_absolute_metrics() -> None:
    # 2 serving + 1 launching; 152 req/s at a target of 50 needs 3.04 instances: within 10 % of the 3
    # on their way, so nothing more is launched (against the 2 serving alone it would ask for 4).
    limits = Limits(1, 10)
    fleet = Fleet(serving=2, launching=1)
    decision = decide(TRACKING, limits, fleet, MetricSample(request_rate=152), T0, Memory())
    assert (decision.desired, decision.reason) == (
        3,
        "requests_per_instance 76/target 50 within ±10%; no change",
    )
    beyond = decide(TRACKING, limits, fleet, MetricSample(request_rate=170), T0, Memory())
    assert beyond.desired == 4


def test_predictive_scales_ahead_of_a_ramp_and_never_below_tracking() -> None:
    ramp = [100.0 + 2.0 * t for t in range(300)]
    reactive = replay(Case("reactive", ScalingConfig(target=50, warmup=60), Limits(1, 50), ramp, 60, 2))
    ahead = replay(
        Case("ahead", ScalingConfig(target=50, warmup=60, predictive=True), Limits(1, 50), ramp, 60, 2)
    )
    assert any(d.policy == "predictive" for d in ahead)
    assert all(
        a.desired >= r.recommendation or a.desired >= r.desired for a, r in zip(ahead, reactive, strict=True)
    )
    first_at = {
        name: next(t for t, d in enumerate(run) if d.desired >= 8)
        for name, run in (("r", reactive), ("a", ahead))
    }
    assert first_at["a"] < first_at["r"]


def test_predictive_never_goes_below_target_tracking() -> None:
    config = ScalingConfig(target=50, predictive=True)
    sample, fleet = MetricSample(request_rate=500.0), Fleet(2)
    decision = decide(config, Limits(1, 50), fleet, sample, T0, Memory(forecast=3.0))
    assert (decision.desired, decision.policy) == (10, "target_tracking")


@pytest.mark.parametrize(
    ("fleet", "expected_desired", "expected_policy", "reason_part"),
    [
        (Fleet(4, releasing=True), 4, "hold", "a release is in progress"),
        (Fleet(4), 8, "target_tracking", "requests_per_instance 100/target 50 needs 8.00 instances: 4 → 8"),
        (Fleet(4, launching=4), 8, "target_tracking", "no change"),
        (
            Fleet(4, launching=8),
            10,
            "target_tracking",
            "held at 10 by the 300s stabilization window: 12 → 10",
        ),
    ],
)
def test_decide_reasons(fleet: Fleet, expected_desired: int, expected_policy: str, reason_part: str) -> None:
    memory = Memory(highest_recent=10)
    decision = decide(TRACKING, Limits(1, 20), fleet, MetricSample(request_rate=400.0), T0, memory)
    assert (decision.desired, decision.policy) == (expected_desired, expected_policy)
    assert reason_part in decision.reason


@pytest.mark.parametrize(
    ("metric", "sample", "serving", "expected"),
    [
        ("cpu", MetricSample(cpu=90.0), 4, 6),
        ("p95_latency", MetricSample(p95_latency=0.4), 2, 4),
        ("concurrency", MetricSample(concurrency=33.0), 1, 4),
    ],
)
def test_other_metrics(metric: str, sample: MetricSample, serving: int, expected: int) -> None:
    targets = {"cpu": 60.0, "p95_latency": 0.2, "concurrency": 10.0}
    config = ScalingConfig(metric=metric, target=targets[metric])
    assert decide(config, Limits(1, 20), Fleet(serving), sample, T0, Memory()).desired == expected


@pytest.mark.parametrize(
    ("config", "sample", "expected"),
    [
        (ScalingConfig(target=50), MetricSample(request_rate=120.0), 3),
        (ScalingConfig(target=50), MetricSample(), 0),
        (ScalingConfig(step=(StepAdjustment(change=1, lower=10),)), MetricSample(request_rate=5.0), 1),
        (ScalingConfig(step=(StepAdjustment(change=1, lower=10),)), MetricSample(), 0),
    ],
)
def test_scale_from_zero(config: ScalingConfig, sample: MetricSample, expected: int) -> None:
    assert decide(config, Limits(0, 10), Fleet(0), sample, T0, Memory()).desired == expected


def test_disabled_scaling_keeps_the_fleet_within_bounds() -> None:
    config = ScalingConfig(enabled=False, target=50)
    decision = decide(config, Limits(2, 20), Fleet(4), MetricSample(request_rate=1000.0), T0, Memory())
    assert (decision.desired, decision.policy, decision.reason) == (
        4,
        "hold",
        "scaling is disabled; no change",
    )
    assert decide(config, Limits(6, 20), Fleet(4), MetricSample(), T0, Memory()).desired == 6

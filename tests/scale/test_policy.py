"""Table-driven tests of the scaling policies through the daemon's `Scaler` and the pure `decide`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from sprout.scale import Decision, Fleet, Limits, MetricSample, Scaler, decide
from sprout.scale.model import Memory
from sprout.spec.scaling import ScalingSection, ScheduleEntry, StepAdjustment

T0 = datetime(2026, 6, 14, 18, 0, tzinfo=UTC).timestamp()


@dataclass
class Case:
    """A run of one scaler: per-second load, and what the decisions must show."""

    name: str
    config: ScalingSection
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


TRACKING = ScalingSection(target=50, scale_in_stabilization=300)

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
        "scale-out is immediate, at most +4 (or x2) per decision",
        TRACKING,
        Limits(1, 20),
        [100.0] * 10 + [400.0] * 10,
        serving=2,
        expect={9: 2, 10: 6, 11: 8, 19: 8},
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
        "launching instances count: a spike launches once, doubling per decision",
        TRACKING,
        Limits(1, 50),
        [100.0] * 5 + [1000.0] * 120,
        launch_delay=60,
        serving=2,
        expect={5: 6, 6: 12, 7: 20, 30: 20, 64: 20, 65: 20, 124: 20},
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
        ScalingSection(
            target=50,
            scale_in_stabilization=0,
            schedule=(
                ScheduleEntry(cron="30 18 * * *", min=8),
                ScheduleEntry(cron="0 19 * * *", min=2),
            ),
        ),
        Limits(2, 20),
        [50.0] * 3700,
        serving=2,
        expect={0: 2, 1799: 2, 1800: 8, 3599: 8, 3600: 2},
    ),
    Case(
        "an `at` action with a duration holds only that long",
        ScalingSection(
            target=50,
            scale_in_stabilization=0,
            schedule=(ScheduleEntry(at=datetime(2026, 6, 14, 18, 10, tzinfo=UTC), min=5, duration=120),),
        ),
        Limits(1, 20),
        [20.0] * 900,
        serving=1,
        expect={599: 1, 600: 5, 719: 5, 720: 1},
    ),
    Case(
        "a scheduled max caps target tracking",
        ScalingSection(target=50, schedule=(ScheduleEntry(cron="0 18 * * *", max=3),)),
        Limits(1, 20),
        [500.0] * 10,
        serving=1,
        expect={0: 3, 9: 3},
    ),
    Case(
        "a scheduled desired is held for the stabilization window, then tracking takes over",
        ScalingSection(
            target=50,
            scale_in_stabilization=60,
            schedule=(ScheduleEntry(at=datetime(2026, 6, 14, 18, 1, tzinfo=UTC), desired=10),),
        ),
        Limits(1, 20),
        [50.0] * 300,
        serving=1,
        expect={59: 1, 60: 10, 119: 10, 178: 10, 179: 1},
    ),
    Case(
        "step policy adds by percent; scale-ins wait for the cooldown",
        ScalingSection(
            target=1000,  # target tracking asks for less than the steps throughout
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
    reactive = replay(Case("reactive", ScalingSection(target=50, warmup=60), Limits(1, 50), ramp, 60, 2))
    ahead = replay(
        Case("ahead", ScalingSection(target=50, warmup=60, predictive=True), Limits(1, 50), ramp, 60, 2)
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
    config = ScalingSection(target=50, predictive=True)
    sample, fleet = MetricSample(request_rate=250.0), Fleet(2)
    decision = decide(config, Limits(1, 50), fleet, sample, T0, Memory(forecast=3.0))
    assert (decision.desired, decision.policy) == (5, "target_tracking")


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
    config = ScalingSection(metric=metric, target=targets[metric])
    assert decide(config, Limits(1, 20), Fleet(serving), sample, T0, Memory()).desired == expected


@pytest.mark.parametrize(
    ("config", "sample", "expected"),
    [
        (ScalingSection(target=50), MetricSample(request_rate=120.0), 3),
        (ScalingSection(target=50), MetricSample(), 0),
        (ScalingSection(step=(StepAdjustment(change=1, lower=10),)), MetricSample(request_rate=5.0), 1),
        (ScalingSection(step=(StepAdjustment(change=1, lower=10),)), MetricSample(), 0),
    ],
)
def test_scale_from_zero(config: ScalingSection, sample: MetricSample, expected: int) -> None:
    assert decide(config, Limits(0, 10), Fleet(0), sample, T0, Memory()).desired == expected


def test_disabled_scaling_keeps_the_fleet_within_bounds() -> None:
    config = ScalingSection(enabled=False, target=50)
    decision = decide(config, Limits(2, 20), Fleet(4), MetricSample(request_rate=1000.0), T0, Memory())
    assert (decision.desired, decision.policy, decision.reason) == (
        4,
        "hold",
        "scaling is disabled; no change",
    )
    assert decide(config, Limits(6, 20), Fleet(4), MetricSample(), T0, Memory()).desired == 6


# The scale-out limit: one decision adds at most x(1 + percent/100) or + instances, whichever is larger
# (the HPA's default: double or +4); min and scheduled capacity are not limited.
@pytest.mark.parametrize(
    ("settings", "limits", "serving", "rate", "expected", "reason_end"),
    [
        ({}, Limits(1, 50), 4, 8650.0, 8, "; limited to 8 (at most +100% or +4 per decision): 4 → 8"),
        ({}, Limits(1, 50), 2, 8650.0, 6, "; limited to 6 (at most +100% or +4 per decision): 2 → 6"),
        ({}, Limits(1, 50), 10, 8650.0, 20, "; limited to 20 (at most +100% or +4 per decision): 10 → 20"),
        ({}, Limits(0, 50), 0, 8650.0, 4, "; limited to 4 (at most +100% or +4 per decision): 0 → 4"),
        ({}, Limits(1, 50), 4, 400.0, 8, " needs 8.00 instances: 4 → 8"),
        ({}, Limits(1, 10), 4, 8650.0, 8, "; limited to 8 (at most +100% or +4 per decision): 4 → 8"),
        (
            {},
            Limits(1, 6),
            4,
            8650.0,
            6,
            "; limited to 8 (at most +100% or +4 per decision); capped at max 6",
        ),
        (
            {"max_scale_out_percent": 50, "max_scale_out_instances": 1},
            Limits(1, 50),
            4,
            8650.0,
            6,
            "; limited to 6 (at most +50% or +1 per decision): 4 → 6",
        ),
        ({}, Limits(12, 50), 4, 8650.0, 12, "; raised to min 12"),
    ],
)
def test_scale_out_limit(
    settings: dict[str, float], limits: Limits, serving: int, rate: float, expected: int, reason_end: str
) -> None:
    config = ScalingSection(target=50, **settings)
    decision = decide(config, limits, Fleet(serving), MetricSample(request_rate=rate), T0, Memory())
    assert decision.desired == expected
    assert decision.reason.endswith(reason_end), decision.reason


def test_a_scheduled_desired_is_not_limited() -> None:
    config = ScalingSection(
        target=50, schedule=[ScheduleEntry(at=datetime(2026, 6, 14, 17, 59, tzinfo=UTC), desired=16)]
    )
    scaler = Scaler(config, Limits(1, 20))
    assert scaler.observe(T0, MetricSample(request_rate=50.0), Fleet(2)).desired == 16

"""`sprout cost` on known instance lifetimes equals the hand-computed bill; `--advise` on a built history."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, date, datetime

import pytest

from sprout.cli.cost_cmd import CostSources, cost_command, parse_since
from sprout.cost.accounting import UsageRow, split_by_day, usage
from sprout.cost.advise import EnvScaling, HourlyLoad, advise
from sprout.cost.capacity import DesiredCapacity
from sprout.cost.lifetimes import InstanceLifetime
from sprout.cost.prices import CostConfig
from sprout.cost.report import Pricing, build_report
from sprout.errors import UserError


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


NOW = at("2026-11-03T00:00")
SINCE = at("2026-11-01T00:00")
LIFETIMES = [
    InstanceLifetime("i1", "shop", "prod", "v1", "a", "small", at("2026-11-01T00:00"), None),
    InstanceLifetime(
        "i2", "shop", "prod", "v1", "b", "small", at("2026-11-01T22:00"), at("2026-11-02T02:00")
    ),
    InstanceLifetime(
        "i3", "shop", "prod", "v2", "a", "small", at("2026-11-02T12:00"), at("2026-11-02T18:00")
    ),
    InstanceLifetime(
        "i4", "shop", "staging", "v1", "a", "medium", at("2026-10-31T12:00"), at("2026-11-01T06:00")
    ),
]


def test_usage_splits_at_midnight_and_clips_to_the_period() -> None:
    assert usage(LIFETIMES, SINCE, NOW) == [
        UsageRow("shop", "prod", "v1", "a", "small", date(2026, 11, 1), 86400.0),
        UsageRow("shop", "prod", "v1", "a", "small", date(2026, 11, 2), 86400.0),
        UsageRow("shop", "prod", "v1", "b", "small", date(2026, 11, 1), 7200.0),
        UsageRow("shop", "prod", "v1", "b", "small", date(2026, 11, 2), 7200.0),
        UsageRow("shop", "prod", "v2", "a", "small", date(2026, 11, 2), 21600.0),
        UsageRow("shop", "staging", "v1", "a", "medium", date(2026, 11, 1), 21600.0),
    ]


def test_split_by_day() -> None:
    assert split_by_day(at("2026-11-01T23:30"), at("2026-11-03T00:30")) == [
        (date(2026, 11, 1), 1800.0),
        (date(2026, 11, 2), 86400.0),
        (date(2026, 11, 3), 1800.0),
    ]


# prod's desired capacity: 1, raised to 2 for i2 (22:00-02:00) and for i3 (12:00-18:00 on the 2nd).
PROD_DESIRED = DesiredCapacity(
    1,
    (
        (at("2026-11-01T22:00"), 2),
        (at("2026-11-02T02:00"), 1),
        (at("2026-11-02T12:00"), 2),
        (at("2026-11-02T18:00"), 1),
    ),
)
DESIRED = {("shop", "prod"): PROD_DESIRED, ("shop", "staging"): DesiredCapacity(1)}


def test_report_equals_the_hand_computed_bill() -> None:
    report = build_report(LIFETIMES, Pricing(), SINCE, NOW, DESIRED)
    # small: 48 + 4 + 6 = 58 h at 0.024; medium: 6 h at 0.048.
    assert report.spend == pytest.approx(58 * 0.024 + 6 * 0.048)  # 1.68
    # November so far is the period; 28 days (672 h) are left. prod runs now: its last 24 h cost
    # i1 24 h + i2 2 h + i3 6 h = 32 small hours, 0.032/h; staging is down and adds nothing.
    assert report.projection.month_spend == pytest.approx(1.68)
    assert report.projection.rate == pytest.approx(32 * 0.024 / 24)
    assert report.projection.hours_left == 672.0
    assert report.projected_month == pytest.approx(1.68 + 0.032 * 672)  # 23.184
    # peaks are desired capacity: prod 2 small over its 48 h up, staging 1 medium over its 6 h up.
    assert report.peaks == {("shop", "prod", "small"): 2, ("shop", "staging", "medium"): 1}
    assert report.fixed_peak_spend == pytest.approx(2 * 48 * 0.024 + 1 * 6 * 0.048)  # 2.592
    # prod ran at desired 1 for 38 of its 48 hours: one instance less than the peak.
    assert report.savings == pytest.approx(38 * 0.024)  # 0.912
    assert report.above_desired == pytest.approx(0.0)


def test_a_fleet_that_never_scaled_saves_nothing() -> None:
    fixed = DesiredCapacity(2)
    lives = [
        InstanceLifetime(f"i{n}", "shop", "prod", "v1", "ab"[n % 2], "small", SINCE, None) for n in range(2)
    ]
    report = build_report(lives, Pricing(), SINCE, NOW, {("shop", "prod"): fixed})
    assert report.spend == pytest.approx(2 * 48 * 0.024)
    assert report.fixed_peak_spend == pytest.approx(report.spend)
    assert (report.savings, report.above_desired) == (0.0, 0.0)


def test_a_blue_green_overlap_is_spend_above_desired_never_savings() -> None:
    # Two v1 instances; at 12:00 on the 2nd two v2 instances start beside them; v1 stays warm 2 h.
    release = at("2026-11-02T12:00")
    lives = [
        InstanceLifetime("b1", "shop", "prod", "v1", "a", "small", SINCE, release + 7200),
        InstanceLifetime("b2", "shop", "prod", "v1", "b", "small", SINCE, release + 7200),
        InstanceLifetime("g1", "shop", "prod", "v2", "a", "small", release, None),
        InstanceLifetime("g2", "shop", "prod", "v2", "b", "small", release, None),
    ]
    report = build_report(lives, Pricing(), SINCE, NOW, {("shop", "prod"): DesiredCapacity(2)})
    assert report.peaks == {("shop", "prod", "small"): 2}
    assert report.savings == 0.0
    assert report.fixed_peak_spend == pytest.approx(2 * 48 * 0.024)
    assert report.above_desired == pytest.approx(2 * 2 * 0.024)  # two warm instances for 2 h
    # Without recorded decisions the fleet is taken as fixed at the most that ran at once: still 0 saved.
    assert build_report(lives, Pricing(), SINCE, NOW).savings == 0.0


def test_nothing_is_projected_for_an_environment_that_is_down() -> None:
    lives = [InstanceLifetime("i1", "shop", "prod", "v1", "a", "small", SINCE, at("2026-11-02T00:00"))]
    report = build_report(lives, Pricing(), SINCE, NOW, {("shop", "prod"): DesiredCapacity(1)})
    assert report.projection.rate == 0.0
    assert report.projected_month == pytest.approx(report.spend) == pytest.approx(24 * 0.024)
    later = build_report(lives, Pricing(), SINCE, NOW + 86400 * 5, {("shop", "prod"): DesiredCapacity(1)})
    assert later.projected_month == pytest.approx(report.projected_month)


def test_a_fleet_seen_for_minutes_is_projected_from_those_minutes() -> None:
    start = NOW - 300
    lives = [InstanceLifetime(f"i{n}", "shop", "prod", "v1", "a", "small", start, None) for n in range(2)]
    report = build_report(lives, Pricing(), start, NOW)
    assert report.projection.rate == pytest.approx(2 * 0.024)
    assert report.projected_month == pytest.approx(2 * 0.024 * (300 / 3600 + 672))


def test_each_app_is_priced_by_its_own_cost_section() -> None:
    lives = [
        InstanceLifetime("s1", "shop", "prod", "v1", "a", "small", SINCE, None),
        InstanceLifetime("l1", "lottery", "prod", "v1", "a", "small", SINCE, None),
    ]
    pricing = Pricing(
        {"shop": CostConfig(prices={"small": 0.5}), "lottery": CostConfig(prices={"small": 0.1})}
    )
    report = build_report(lives, pricing, SINCE, NOW)
    assert report.spend == pytest.approx(48 * 0.5 + 48 * 0.1)
    mixed = Pricing({"shop": CostConfig(currency="EUR"), "lottery": CostConfig(currency="USD")})
    with pytest.raises(UserError) as caught:
        build_report(lives, mixed, SINCE, NOW)
    assert str(caught.value) == (
        "cost: apps are priced in different currencies (EUR: shop; USD: lottery); "
        "set one currency in every app's [cost]"
    )


def test_cost_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    sources = CostSources(lifetimes=lambda: LIFETIMES, now=lambda: NOW, desired=lambda: DESIRED)
    cost_command(since="2026-11-01", json_output=True, sources=sources)
    document = json.loads(capsys.readouterr().out)
    assert (document["spend"], document["projected_month"]) == (1.68, 23.184)
    assert (document["rate_per_hour"], document["hours_left_in_month"]) == (0.032, 672.0)
    assert (document["fixed_peak_spend"], document["savings"]) == (2.592, 0.912)
    assert document["above_desired_spend"] == 0.0
    assert document["instance_seconds"] == 230400.0
    assert (document["since"], document["until"]) == ("2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z")
    assert document["usage"][4] == {
        "app": "shop",
        "env": "prod",
        "version": "v2",
        "zone": "a",
        "size": "small",
        "day": "2026-11-02",
        "instance_seconds": 21600.0,
        "cost": 0.144,
    }


def test_cost_command_text(capsys: pytest.CaptureFixture[str]) -> None:
    sources = CostSources(
        lifetimes=lambda: LIFETIMES,
        now=lambda: NOW,
        prices=Pricing(default=CostConfig(currency="EUR")),
        desired=lambda: DESIRED,
    )
    cost_command(since="2d", sources=sources)
    text = capsys.readouterr().out
    assert "spend so far              1.6800 EUR" in text
    assert (
        "projected month          23.1840 EUR  (spent this month 1.6800 + 0.0320 EUR/h observed x 672.0 h left)"
        in text
    )
    assert "saved by scaling          0.9120 EUR  (35%)" in text
    assert "shop/prod: 2 x small" in text
    assert "above desired" not in text


def test_manifest_prices_override_defaults() -> None:
    prices = CostConfig(currency="EUR", prices={"small": 0.02, "medium": 0.048, "xlarge": 0.2})
    with pytest.raises(UserError, match=r"cost: no price for size 'huge' \(known: medium, small, xlarge\)"):
        prices.hourly("huge")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, at("2026-10-31T12:00")),
        ("2026-11-02", at("2026-11-02T00:00")),
        ("12h", NOW - 43200),
        ("2026-11-02T06:00+01:00", at("2026-11-02T05:00")),
    ],
)
def test_parse_since(value: str | None, expected: float) -> None:
    assert parse_since(value, NOW, LIFETIMES) == expected


def test_bad_since() -> None:
    with pytest.raises(UserError, match="cost --since: 'last week' is neither an ISO time"):
        parse_since("last week", NOW, LIFETIMES)


# A synthetic history: three days; 01:00-07:00 UTC the peak is 60 req/s (2 instances at target 50)
# while min is 4; the other hours need 8 instances and p99 stays at 200 ms against a 500 ms SLO.
SHOP = EnvScaling(
    "shop", "prod", "small", minimum=4, metric="requests_per_instance", target=50.0, slo_p99=0.5
)


def history(p99: float = 0.2, quiet_hours: Collection[int] = range(1, 7)) -> list[HourlyLoad]:
    samples = []
    for day in range(3):
        for hour in range(24):
            start = at("2026-11-01T00:00") + day * 86400 + hour * 3600
            quiet = hour in quiet_hours
            samples.append(
                HourlyLoad(
                    "shop",
                    "prod",
                    start,
                    requests_per_second=40.0 if quiet else 350.0,
                    peak_requests_per_second=60.0 if quiet else 400.0,
                    p99_latency=0.05 if quiet else p99,
                    instances=4.0 if quiet else 8.0,
                )
            )
    return samples


def test_advise_recommends_a_lower_min_in_quiet_hours_and_a_higher_target() -> None:
    found = advise(history(), [SHOP], Pricing())
    assert [r.kind for r in found] == ["raise_target", "lower_min_in_quiet_hours"]
    target, quiet = found
    assert quiet.change == {"scaling.schedule": [{"cron": "0 1 * * *", "duration": "6h", "min": 2}]}
    assert quiet.message == (
        "shop/prod: from 01:00 to 07:00 UTC the peak load needed at most 2 instance(s) on each of 3 observed "
        "day(s), but min is 4: schedule min = 2 for those 6 hours"
    )
    # (4 - 2) instances x 6 h x 730/24 days x 0.024
    assert quiet.monthly_saving == pytest.approx(8.76)
    assert target.change == {"scaling.target": 62.5}
    # 54 busy hours x min(8 - 4, 8 x (1 - 50/62.5)) = 86.4 instance-hours in 72 observed hours, x 730 x 0.024
    assert target.monthly_saving == pytest.approx(21.024)


def test_no_advice_without_headroom_or_a_long_enough_quiet_spell() -> None:
    assert advise(history(p99=0.4, quiet_hours=range(3, 4)), [SHOP], Pricing()) == []


def test_quiet_hours_across_midnight_are_one_run() -> None:
    found = advise(history(p99=0.4, quiet_hours={22, 23, 0, 1}), [SHOP], Pricing())
    assert [r.change for r in found] == [
        {"scaling.schedule": [{"cron": "0 22 * * *", "duration": "4h", "min": 2}]}
    ]


def test_cost_command_advise_text(capsys: pytest.CaptureFixture[str]) -> None:
    sources = CostSources(
        lifetimes=lambda: LIFETIMES, now=lambda: NOW, hourly=history, settings=lambda: [SHOP]
    )
    cost_command(advise_flag=True, sources=sources)
    text = capsys.readouterr().out
    assert (
        "advice: shop/prod: p99 stayed at or below 200 ms against the 500 ms SLO in all 54 busy hour(s)"
        in text
    )
    assert "(saves about 8.76 USD/month)" in text


@pytest.mark.parametrize(
    ("metric", "target", "quiet_min", "raise_message"),
    [
        # 60 req/s peaks at 50 req/s per instance: 2 instances.
        (
            "requests_per_instance",
            50.0,
            2,
            "raise the requests_per_instance target from 50 req/s per instance to 62.5 req/s per instance",
        ),
        # Not rates: an instance carried 350/8 = 43.75 req/s in the busy hours the scaler sized: 2 instances.
        ("cpu", 60.0, 2, "raise the cpu target from 60 % CPU to 75 % CPU"),
        ("p95_latency", 0.2, 2, "raise the p95_latency target from 200 ms p95 to 250 ms p95"),
        (
            "concurrency",
            4.0,
            2,
            "raise the concurrency target from 4 requests in flight per instance to 5 requests in flight per instance",
        ),
    ],
)
def test_advice_reads_the_target_in_its_metrics_unit(
    metric: str, target: float, quiet_min: int, raise_message: str
) -> None:
    env = EnvScaling("shop", "prod", "small", minimum=4, metric=metric, target=target, slo_p99=0.5)
    raised, quiet = advise(history(), [env], Pricing())
    assert quiet.change == {"scaling.schedule": [{"cron": "0 1 * * *", "duration": "6h", "min": quiet_min}]}
    assert raise_message in raised.message
    assert raised.change == {"scaling.target": round(target * 1.25, 2)}


def test_a_cpu_target_is_never_read_as_requests_per_second() -> None:
    # With cpu = 60 read as 60 req/s, a 100 req/s peak would "need" 2 instances; an instance here carries
    # 350/8 = 43.75 req/s at the target, so it needs 3, and min 3 leaves nothing to lower.
    env = EnvScaling("shop", "prod", "small", minimum=3, metric="cpu", target=60.0, slo_p99=0.5)
    samples = [
        HourlyLoad(
            "shop",
            "prod",
            SINCE + h * 3600,
            90.0 if h < 6 else 350.0,
            100.0 if h < 6 else 400.0,
            0.4,
            3.0 if h < 6 else 8.0,
        )
        for h in range(24)
    ]
    assert advise(samples, [env], Pricing()) == []


def test_no_quiet_hours_advice_for_a_non_rate_metric_without_busy_hours() -> None:
    env = EnvScaling("shop", "prod", "small", minimum=4, metric="cpu", target=60.0, slo_p99=0.5)
    quiet_only = [s for s in history() if s.instances <= 4]
    assert advise(quiet_only, [env], Pricing()) == []

"""`sprout cost` on known instance lifetimes equals the hand-computed bill; `--advise` on a built history."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, date, datetime

import pytest

from sprout.cli.cost_cmd import CostSources, cost_command, parse_since
from sprout.cost.accounting import UsageRow, split_by_day, usage
from sprout.cost.advise import EnvScaling, HourlyLoad, advise
from sprout.cost.lifetimes import InstanceLifetime
from sprout.cost.prices import CostConfig
from sprout.cost.report import build_report
from sprout.errors import ManifestError, UserError


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


def test_report_equals_the_hand_computed_bill() -> None:
    report = build_report(LIFETIMES, CostConfig(), SINCE, NOW)
    # small: 48 + 4 + 6 = 58 h at 0.024; medium: 6 h at 0.048.
    assert report.spend == pytest.approx(58 * 0.024 + 6 * 0.048)  # 1.68
    # last 24 h: i1 24 h + i2 2 h + i3 6 h = 32 small hours -> 0.768 per day -> x 730 h / 24 h.
    assert report.projected_month == pytest.approx(32 * 0.024 / 24 * 730)  # 23.36
    # peaks: prod 2 small (i1 with i2, later i1 with i3), staging 1 medium, each over the 48 h period.
    assert report.peaks == {("shop", "prod", "small"): 2, ("shop", "staging", "medium"): 1}
    assert report.fixed_peak_spend == pytest.approx(2 * 48 * 0.024 + 1 * 48 * 0.048)  # 4.608
    assert report.savings == pytest.approx(4.608 - 1.68)


def test_cost_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    sources = CostSources(lifetimes=lambda: LIFETIMES, now=lambda: NOW)
    cost_command(since="2026-11-01", json_output=True, sources=sources)
    document = json.loads(capsys.readouterr().out)
    assert (document["spend"], document["projected_month"]) == (1.68, 23.36)
    assert (document["fixed_peak_spend"], document["savings"]) == (4.608, 2.928)
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
        lifetimes=lambda: LIFETIMES, now=lambda: NOW, prices=CostConfig.from_mapping({"currency": "EUR"})
    )
    cost_command(since="2d", sources=sources)
    text = capsys.readouterr().out
    assert "spend so far              1.6800 EUR" in text
    assert "saved by scaling          2.9280 EUR  (64%)" in text
    assert "shop/prod: 2 x small" in text


def test_manifest_prices_override_defaults() -> None:
    prices = CostConfig.from_mapping({"currency": "EUR", "prices": {"small": 0.02, "xlarge": 0.2}})
    assert prices.hourly("small") == 0.02
    assert prices.hourly("medium") == 0.048
    assert prices.hourly("xlarge") == 0.2
    with pytest.raises(
        UserError, match=r"cost: no price for size 'huge' \(known: large, medium, small, xlarge\)"
    ):
        prices.hourly("huge")
    with pytest.raises(
        ManifestError, match=r"cost.prices.small: expected a price per hour >= 0, got 'cheap'"
    ):
        CostConfig.from_mapping({"prices": {"small": "cheap"}})


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
SHOP = EnvScaling("shop", "prod", "small", minimum=4, target=50.0, slo_p99=0.5)


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
    found = advise(history(), [SHOP], CostConfig())
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
    assert advise(history(p99=0.4, quiet_hours=range(3, 4)), [SHOP], CostConfig()) == []


def test_quiet_hours_across_midnight_are_one_run() -> None:
    found = advise(history(p99=0.4, quiet_hours={22, 23, 0, 1}), [SHOP], CostConfig())
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

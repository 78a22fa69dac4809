"""The scaler and the bill take the manifest as `sprout.spec` validated it: one parser, exact messages.

Each row is a `[scaling]` or `[cost]` mistake and the exact error `sprout validate` prints; what passes
here is what the daemon's `Scaler` and `sprout cost` run with, so nothing can pass `validate` and then
raise in the daemon.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sprout.cost.prices import CostConfig
from sprout.errors import ManifestError
from sprout.scale import Fleet, Limits, MetricSample, Scaler
from sprout.spec import load_manifest, parse_manifest
from sprout.spec.scaling import StepAdjustment

APP = '[app]\nname = "shop"\nweb = "run"\n'
CHANGE_HINT = 'write it like "+2", -1 or "+50%"'

MISTAKES: list[tuple[str, str, list[str]]] = [
    (
        "step with neither bound",
        "[[scaling.step]]\nchange = 1\n",
        ['scaling.step[0]: give "lower", "upper" or both (the metric interval this step applies to)'],
    ),
    (
        "step change that is no number",
        '[[scaling.step]]\nlower = 1\nchange = "lots"\n',
        [f"scaling.step[0]: change 'lots' is not a change; {CHANGE_HINT}"],
    ),
    (
        "step change of zero percent",
        '[[scaling.step]]\nlower = 1\nchange = "+0%"\n',
        [f"scaling.step[0]: change 0 changes nothing; {CHANGE_HINT}"],
    ),
    (
        "step change of zero",
        "[[scaling.step]]\nlower = 1\nchange = 0\n",
        [f"scaling.step[0]: change 0 changes nothing; {CHANGE_HINT}"],
    ),
    (
        "step change fractional",
        "[[scaling.step]]\nlower = 1\nchange = 1.5\n",
        ["scaling.step[0].change: must be a whole number (got 1.5)"],
    ),
    (
        "step change boolean",
        "[[scaling.step]]\nlower = 1\nchange = true\n",
        ["scaling.step[0].change: must be a whole number (got True)"],
    ),
    (
        "step bounds reversed",
        "[[scaling.step]]\nlower = 5\nupper = 1\nchange = 1\n",
        ["scaling.step[0]: lower (5) must be below upper (1)"],
    ),
    (
        "unknown metric",
        '[scaling]\nmetric = "qps"\n',
        ["scaling.metric: 'qps' is not one of requests_per_instance, concurrency, cpu, p95_latency"],
    ),
    ("target zero", "[scaling]\ntarget = 0\n", ["scaling.target: must be greater than 0 (got 0)"]),
    (
        "warmup not a duration",
        '[scaling]\nwarmup = "soon"\n',
        ['scaling.warmup: invalid duration \'soon\' (use e.g. "500ms", "2s", "10m")'],
    ),
    (
        "misspelt key",
        '[scaling]\ncolldown = "1m"\n',
        ['scaling.colldown: unknown key in [scaling]; did you mean "cooldown"?'],
    ),
    (
        "scale-out limit of zero percent",
        "[scaling]\nmax_scale_out_percent = 0\n",
        ["scaling.max_scale_out_percent: must be greater than 0 (got 0)"],
    ),
    (
        "scale-out limit of zero instances",
        "[scaling]\nmax_scale_out_instances = 0\n",
        ["scaling.max_scale_out_instances: must be at least 1 (got 0)"],
    ),
    (
        "schedule without a trigger",
        "[[scaling.schedule]]\nmin = 1\n",
        ['scaling.schedule[0]: give exactly one of "cron" or "at"'],
    ),
    (
        "schedule with a bad cron",
        '[[scaling.schedule]]\ncron = "61 * * * *"\nmin = 1\n',
        [
            'scaling.schedule[0].cron: invalid cron expression "61 * * * *" (5 fields: minute hour day month weekday)'
        ],
    ),
    (
        "schedule without a capacity",
        '[[scaling.schedule]]\ncron = "* * * * *"\n',
        ['scaling.schedule[0]: set at least one of "min", "max" or "desired"'],
    ),
    (
        "price not a number",
        '[cost.prices]\nsmall = "cheap"\n',
        ["cost.prices.small: must be a number (got 'cheap')"],
    ),
    ("negative price", "[cost.prices]\nsmall = -1\n", ["cost.prices.small: must be at least 0 (got -1)"]),
    (
        "price as a boolean",
        "[cost.prices]\nsmall = true\n",
        ["cost.prices.small: must be a number (got True)"],
    ),
    ("empty currency", '[cost]\ncurrency = ""\n', ["cost.currency: must not be empty (got '')"]),
    ("unknown cost key", '[cost]\nregion = "eu"\n', ["cost.region: unknown key in [cost]"]),
]


@pytest.mark.parametrize(("case", "text", "expected"), MISTAKES, ids=[case for case, _, _ in MISTAKES])
def test_mistake_has_exact_message(tmp_path: Path, case: str, text: str, expected: list[str]) -> None:
    (tmp_path / "sprout.toml").write_text(APP + text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('"+50%"', StepAdjustment(lower=80, change=50, percent=True)),
        ('"-25%"', StepAdjustment(lower=80, change=-25, percent=True)),
        ('"+2"', StepAdjustment(lower=80, change=2)),
        ("-1", StepAdjustment(lower=80, change=-1)),
        ("50\npercent = true", StepAdjustment(lower=80, change=50, percent=True)),
    ],
)
def test_documented_change_forms(tmp_path: Path, change: str, expected: StepAdjustment) -> None:
    (tmp_path / "sprout.toml").write_text(APP + f"[[scaling.step]]\nlower = 80\nchange = {change}\n")
    assert load_manifest(tmp_path).scaling.step == [expected]


def test_the_daemon_runs_what_validate_accepts() -> None:
    manifest = parse_manifest(
        {
            "app": {"name": "shop", "web": "run"},
            "instances": {"min": 1, "max": 20},
            "scaling": {"target": 1000, "step": [{"lower": 80, "change": "+50%"}]},
        }
    )
    scaler = Scaler(manifest.scaling, Limits.of(manifest.instances))
    decision = scaler.observe(0.0, MetricSample(request_rate=400.0), Fleet(4))
    assert (decision.desired, decision.policy) == (6, "step")
    assert decision.reason == "requests_per_instance 100 in step [80.0, None) asks for 6: 4 → 6"


def test_schedule_times_without_an_offset_are_utc() -> None:
    data: dict[str, Any] = {"app": {"name": "shop", "web": "run"}}
    data["scaling"] = {"schedule": [{"at": "2026-12-24T18:00:00", "max": 2}]}
    (entry,) = parse_manifest(data).scaling.schedule
    assert entry.at == datetime(2026, 12, 24, 18, tzinfo=UTC)
    assert entry.label == "at 2026-12-24T18:00:00+00:00"


def test_prices_are_the_apps_own_cost_section_over_the_defaults() -> None:
    data: dict[str, Any] = {"app": {"name": "shop", "web": "run"}}
    data["cost"] = {"currency": "EUR", "prices": {"small": 0.02, "xlarge": 0.2}}
    prices = CostConfig.of(parse_manifest(data).cost)
    assert prices.currency == "EUR"
    assert (prices.hourly("small"), prices.hourly("medium"), prices.hourly("xlarge")) == (0.02, 0.048, 0.2)


def test_limits_validate_and_clamp() -> None:
    assert Limits(2, 5).clamp(9) == 5
    assert Limits(2, 5).clamp(0) == 2
    with pytest.raises(ManifestError, match="instances: need 0 <= min <= max, got min=3, max=2"):
        Limits(3, 2)

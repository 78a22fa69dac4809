"""The bill: spend so far, the month projected from the observed rate, and what autoscaling saved.

- spend: instance-seconds x the price per hour of the instance's size in its app's own `[cost]` / 3600,
  inside [since, until);
- projected month (the calendar month of `until`, UTC): spent this month + for each environment still
  up, its observed rate x the hours left in the month. The observed rate is the environment's spend per
  hour since it came up (its current run of instances), over the last 24 h at most: a fleet seen for
  5 minutes is projected from those 5 minutes, and an environment that is down adds nothing;
- fixed peak: for each app/env/size, the highest desired capacity (the scaler's decisions, `sprout scale`,
  `up`; never the instances of a release overlap or a warm fleet) kept for every second the environment
  was up; saved by scaling = the instance-hours between that peak and the desired capacity, priced. A
  fleet that never scaled saves 0; instances beyond desired capacity (a blue/green release, a warm fleet
  kept for rollback) are shown as spend above desired, not as savings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sprout.cost.accounting import UsageRow, usage
from sprout.cost.capacity import DesiredCapacity, most_at_once, up_spans
from sprout.cost.lifetimes import InstanceLifetime
from sprout.cost.prices import CostConfig
from sprout.errors import UserError

RECENT = 86400.0
"""The projection's rate is observed over at most this many seconds before `until`."""


@dataclass(frozen=True, slots=True)
class Pricing:
    """Each app's prices from its own manifest's `[cost]`; `default` for an app without one."""

    apps: Mapping[str, CostConfig] = field(default_factory=dict)
    default: CostConfig = field(default_factory=CostConfig)

    def of(self, app: str) -> CostConfig:
        """The prices of `app`."""
        return self.apps.get(app, self.default)

    def hourly(self, app: str, size: str) -> float:
        """What one instance-hour of `size` costs `app`."""
        return self.of(app).hourly(size)

    def currency(self, apps: Sequence[str]) -> str:
        """The one currency these apps are priced in."""
        found = {app: self.of(app).currency for app in apps}
        currencies = sorted(set(found.values()))
        if len(currencies) > 1:
            listed = "; ".join(
                f"{c}: {', '.join(a for a, x in sorted(found.items()) if x == c)}" for c in currencies
            )
            raise UserError(
                f"cost: apps are priced in different currencies ({listed}); set one currency in every app's [cost]"
            )
        return currencies[0] if currencies else self.default.currency


@dataclass(frozen=True, slots=True)
class PricedRow:
    """A usage row with its cost."""

    usage: UsageRow
    cost: float


@dataclass(frozen=True, slots=True)
class Projection:
    """The calendar month of the bill's end: spent in it so far, the rate per hour now, hours left."""

    month_spend: float
    rate: float
    hours_left: float

    @property
    def total(self) -> float:
        """The month as projected: spent so far + rate x hours left."""
        return self.month_spend + self.rate * self.hours_left


@dataclass(frozen=True, slots=True)
class CostReport:
    """Spend, projection and savings over [since, until)."""

    since: float
    until: float
    currency: str
    rows: tuple[PricedRow, ...]
    spend: float
    projection: Projection
    fixed_peak_spend: float
    savings: float
    """What autoscaling saved: fixed peak minus the desired capacity's instance-hours, priced."""
    peaks: dict[tuple[str, str, str], int]

    @property
    def projected_month(self) -> float:
        """The calendar month's projected bill."""
        return self.projection.total

    @property
    def above_desired(self) -> float:
        """Spend on instances beyond desired capacity: release overlaps, warm fleets, replacements."""
        return max(0.0, self.spend - (self.fixed_peak_spend - self.savings))

    def to_json(self) -> dict[str, Any]:
        """The `sprout cost --json` document."""
        return {
            "currency": self.currency,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "instance_seconds": round(sum(r.usage.seconds for r in self.rows), 3),
            "spend": round(self.spend, 6),
            "projected_month": round(self.projected_month, 6),
            "month_spend": round(self.projection.month_spend, 6),
            "rate_per_hour": round(self.projection.rate, 6),
            "hours_left_in_month": round(self.projection.hours_left, 4),
            "fixed_peak_spend": round(self.fixed_peak_spend, 6),
            "savings": round(self.savings, 6),
            "above_desired_spend": round(self.above_desired, 6),
            "peaks": [
                {"app": a, "env": e, "size": s, "instances": n} for (a, e, s), n in sorted(self.peaks.items())
            ],
            "usage": [
                {
                    "app": r.usage.app,
                    "env": r.usage.env,
                    "version": r.usage.version,
                    "zone": r.usage.zone,
                    "size": r.usage.size,
                    "day": r.usage.day.isoformat(),
                    "instance_seconds": round(r.usage.seconds, 3),
                    "cost": round(r.cost, 6),
                }
                for r in self.rows
            ],
        }


def build_report(
    lifetimes: Sequence[InstanceLifetime],
    pricing: Pricing,
    since: float,
    until: float,
    desired: Mapping[tuple[str, str], DesiredCapacity] | None = None,
) -> CostReport:
    """Price the lifetimes inside [since, until); `desired`: each environment's desired capacity over time
    (an environment without it is taken as a fixed fleet of the most instances that ran at once)."""
    rows = tuple(
        PricedRow(row, row.seconds / 3600.0 * pricing.hourly(row.app, row.size))
        for row in usage(lifetimes, since, until)
    )
    by_key: dict[tuple[str, str, str], list[InstanceLifetime]] = defaultdict(list)
    for life in lifetimes:
        by_key[(life.app, life.env, life.size)].append(life)
    fixed = saved = 0.0
    peaks: dict[tuple[str, str, str], int] = {}
    for key, lives in sorted(by_key.items()):
        app, env, size = key
        plan = (desired or {}).get((app, env)) or DesiredCapacity(most_at_once(lives))
        pieces = [piece for span in up_spans(lives, since, until) for piece in plan.segments(*span)]
        if not pieces:
            continue
        price = pricing.hourly(app, size)
        peak = max(n for _, _, n in pieces)
        peaks[key] = peak
        fixed += sum((b - a) * peak for a, b, _ in pieces) / 3600.0 * price
        saved += sum((b - a) * (peak - n) for a, b, n in pieces) / 3600.0 * price
    apps = sorted({life.app for life in lifetimes})
    return CostReport(
        since,
        until,
        pricing.currency(apps),
        rows,
        sum(row.cost for row in rows),
        project(lifetimes, pricing, until),
        fixed,
        saved,
        peaks,
    )


def project(lifetimes: Sequence[InstanceLifetime], pricing: Pricing, until: float) -> Projection:
    """The calendar month of `until`: spent so far, plus each environment still up at its observed rate."""
    moment = datetime.fromtimestamp(until, UTC)
    month_start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1)
    month_spend = sum(
        row.seconds / 3600.0 * pricing.hourly(row.app, row.size)
        for row in usage(lifetimes, month_start.timestamp(), until)
    )
    by_env: dict[tuple[str, str], list[InstanceLifetime]] = defaultdict(list)
    for life in lifetimes:
        by_env[(life.app, life.env)].append(life)
    rate = sum(_observed_rate(lives, pricing, until) for lives in by_env.values())
    return Projection(month_spend, rate, (next_month.timestamp() - until) / 3600.0)


def _observed_rate(lives: Sequence[InstanceLifetime], pricing: Pricing, until: float) -> float:
    """An environment's spend per hour since it came up (within `RECENT`); 0 when nothing runs now."""
    running = [life for life in lives if life.start <= until and (life.end is None or life.end > until)]
    if not running:
        return 0.0
    spans = up_spans(lives, until - RECENT, until)
    begin = spans[-1][0] if spans and spans[-1][1] >= until else until
    if until - begin <= 0:
        return sum(pricing.hourly(life.app, life.size) for life in running)
    spent = sum(
        (b - a) / 3600.0 * pricing.hourly(life.app, life.size)
        for life in lives
        if (span := life.clipped(begin, until)) is not None
        for a, b in [span]
    )
    return spent / ((until - begin) / 3600.0)


def render_text(report: CostReport) -> str:
    """The human-readable bill."""
    c = report.currency
    p = report.projection
    lines = [
        f"cost from {_iso(report.since)} to {_iso(report.until)}",
        f"  spend so far        {report.spend:12.4f} {c}",
        f"  projected month     {report.projected_month:12.4f} {c}  (spent this month {p.month_spend:.4f}"
        f" + {p.rate:.4f} {c}/h observed x {p.hours_left:.1f} h left)",
        f"  fixed peak fleet    {report.fixed_peak_spend:12.4f} {c}  "
        + ", ".join(f"{a}/{e}: {n} x {s}" for (a, e, s), n in sorted(report.peaks.items())),
        f"  saved by scaling    {report.savings:12.4f} {c}"
        + (f"  ({report.savings / report.fixed_peak_spend:.0%})" if report.fixed_peak_spend else ""),
    ]
    if report.above_desired >= 0.00005:
        lines.append(
            f"  above desired       {report.above_desired:12.4f} {c}  (release overlap, warm fleets, replacements)"
        )
    if report.rows:
        lines.append("")
        lines.append(
            f"  {'day':<11}{'app/env':<24}{'version':<14}{'zone':<8}{'size':<8}{'inst-h':>9}{'cost':>11}"
        )
        for row in report.rows:
            u = row.usage
            lines.append(
                f"  {u.day.isoformat():<11}{u.app + '/' + u.env:<24}{u.version:<14}{u.zone:<8}{u.size:<8}"
                f"{u.seconds / 3600:>9.2f}{row.cost:>11.4f}"
            )
    return "\n".join(lines)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")

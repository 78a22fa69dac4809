"""The bill: spend so far, the month projected from the recent rate, and savings against fixed peak capacity.

- spend: instance-seconds x price per hour of the instance's size / 3600, inside [since, until);
- projected month: the spend rate of the last 24 h of the period (the whole period if shorter)
  x 730 hours, the month AWS prices by;
- fixed peak: what the period would have cost with, for each app/env/size, the most instances that ran
  at once kept running from `since` to `until` - the fleet the observed peak needs without autoscaling;
  savings are that minus the spend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sprout.cost.accounting import UsageRow, peak_fleets, usage
from sprout.cost.lifetimes import InstanceLifetime
from sprout.cost.prices import CostConfig

HOURS_PER_MONTH = 730.0
RECENT = 86400.0


@dataclass(frozen=True, slots=True)
class PricedRow:
    """A usage row with its cost."""

    usage: UsageRow
    cost: float


@dataclass(frozen=True, slots=True)
class CostReport:
    """Spend, projection and savings over [since, until)."""

    since: float
    until: float
    currency: str
    rows: tuple[PricedRow, ...]
    spend: float
    projected_month: float
    fixed_peak_spend: float
    peaks: dict[tuple[str, str, str], int]

    @property
    def savings(self) -> float:
        """What autoscaling saved against the fixed peak fleet."""
        return self.fixed_peak_spend - self.spend

    def to_json(self) -> dict[str, Any]:
        """The `sprout cost --json` document."""
        return {
            "currency": self.currency,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "instance_seconds": round(sum(r.usage.seconds for r in self.rows), 3),
            "spend": round(self.spend, 6),
            "projected_month": round(self.projected_month, 6),
            "fixed_peak_spend": round(self.fixed_peak_spend, 6),
            "savings": round(self.savings, 6),
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
    lifetimes: Sequence[InstanceLifetime], prices: CostConfig, since: float, until: float
) -> CostReport:
    """Price the lifetimes inside [since, until)."""
    rows = tuple(
        PricedRow(row, row.seconds / 3600.0 * prices.hourly(row.size))
        for row in usage(lifetimes, since, until)
    )
    spend = sum(row.cost for row in rows)
    recent_from = max(since, until - RECENT)
    recent_hours = (until - recent_from) / 3600.0
    recent_spend = sum(
        row.seconds / 3600.0 * prices.hourly(row.size) for row in usage(lifetimes, recent_from, until)
    )
    projected = recent_spend / recent_hours * HOURS_PER_MONTH if recent_hours > 0 else 0.0
    peaks = peak_fleets(lifetimes, since, until)
    hours = (until - since) / 3600.0
    fixed = sum(count * hours * prices.hourly(size) for (_, _, size), count in peaks.items())
    return CostReport(since, until, prices.currency, rows, spend, projected, fixed, peaks)


def render_text(report: CostReport) -> str:
    """The human-readable bill."""
    c = report.currency
    lines = [
        f"cost from {_iso(report.since)} to {_iso(report.until)}",
        f"  spend so far        {report.spend:12.4f} {c}",
        f"  projected month     {report.projected_month:12.4f} {c}  (last 24 h rate x {HOURS_PER_MONTH:g} h)",
        f"  fixed peak fleet    {report.fixed_peak_spend:12.4f} {c}  "
        + ", ".join(f"{a}/{e}: {n} x {s}" for (a, e, s), n in sorted(report.peaks.items())),
        f"  saved by scaling    {report.savings:12.4f} {c}"
        + (f"  ({report.savings / report.fixed_peak_spend:.0%})" if report.fixed_peak_spend else ""),
    ]
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

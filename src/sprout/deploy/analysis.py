"""Canary analysis: compare canary and stable over one interval of router metrics; promote, wait or roll back.

The inputs are two `/metrics.json` group snapshots per group (the router's counters are monotonic), so
an interval's figures are the differences between them. The verdict is a pure function of those
figures and the manifest's `[deploy.canary]` thresholds, so it is table-tested and explains itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sprout.spec.models import CanaryAnalysis

#: A canary slower than stable by less than this (seconds, p95) is not a regression, whatever the ratio:
#: a freshly started instance answers a few milliseconds slower (9 ms against 5 ms rolled good versions back).
LATENCY_MARGIN = 0.025

Outcome = Literal["promote", "wait", "rollback"]
#: What a rollback verdict is about: 5xx answers are judged at once; a latency regression must show in
#: two intervals in a row (see `deploy/steps.py`), because one interval's p95 at a small weight can be
#: a single slow request of an instance on a busy host (seen rolling good versions back in bench/release.py).
Signal = Literal["", "errors", "latency"]


@dataclass(frozen=True)
class Window:
    """One group's traffic during an analysis interval."""

    requests: int
    errors: int
    p95: float

    @property
    def error_rate(self) -> float:
        """Share of 5xx answers (0.0 without requests)."""
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def between(cls, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Window:
        """The interval between two snapshots of one group (`before` None: since the router started)."""
        requests = _count(after) - (_count(before) if before else 0)
        errors = _errors(after) - (_errors(before) if before else 0)
        delta = latency_delta(before, after)
        return cls(
            requests=max(requests, 0), errors=max(errors, 0), p95=quantile(sorted(delta.items()), 0.95)
        )


@dataclass(frozen=True)
class Verdict:
    """What to do with a canary step, and why."""

    outcome: Outcome
    reason: str
    signal: Signal = ""


def judge(canary: Window, stable: Window, rules: CanaryAnalysis) -> Verdict:
    """Promote, wait for more traffic, or roll back, by the 5xx rate and p95 latency of canary vs stable."""
    if canary.requests < rules.min_requests:
        return Verdict(
            "wait", f"canary served {canary.requests} requests, analysis needs {rules.min_requests}"
        )
    excess = canary.error_rate - stable.error_rate
    if excess > rules.max_error_rate:
        return Verdict(
            "rollback",
            f"canary 5xx rate {canary.error_rate:.1%} ({canary.errors}/{canary.requests}) vs stable "
            f"{stable.error_rate:.1%}: above the allowed +{rules.max_error_rate:.1%}",
            "errors",
        )
    if stable.requests and canary.p95 - stable.p95 > LATENCY_MARGIN:
        ratio = canary.p95 / max(stable.p95, 0.001)
        if ratio > rules.max_latency_ratio:
            return Verdict(
                "rollback",
                f"canary p95 {canary.p95 * 1000:.0f} ms is {ratio:.1f}x stable's {stable.p95 * 1000:.0f} ms: "
                f"above the allowed {rules.max_latency_ratio:g}x",
                "latency",
            )
    return Verdict(
        "promote",
        f"canary healthy: {canary.requests} requests, 5xx {canary.error_rate:.1%} vs {stable.error_rate:.1%}, "
        f"p95 {canary.p95 * 1000:.0f} ms vs {stable.p95 * 1000:.0f} ms",
    )


def _count(snapshot: Mapping[str, Any]) -> int:
    return int(snapshot["requests"]["total"])


def _errors(snapshot: Mapping[str, Any]) -> int:
    return int(snapshot["requests"].get("5xx", 0))


def _buckets(snapshot: Mapping[str, Any]) -> dict[float, int]:
    """Cumulative latency buckets keyed by upper bound (+Inf as infinity)."""
    return {float(bound): int(n) for bound, n in snapshot["latency"]["buckets"].items()}


def latency_delta(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[float, int]:
    """The cumulative latency buckets of the interval between two snapshots (never negative)."""
    upper = _buckets(after)
    lower = _buckets(before) if before else {}
    return {bound: max(upper[bound] - lower.get(bound, 0), 0) for bound in upper}


def quantile(cumulative: list[tuple[float, int]], q: float) -> float:
    """A quantile from cumulative bucket counts sorted by bound, interpolated inside its bucket."""
    total = cumulative[-1][1] if cumulative else 0
    if total <= 0:
        return 0.0
    rank = q * total
    lower_bound, lower_count = 0.0, 0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound

"""Canary analysis: table-driven verdicts over snapshots produced by the router's own counters."""

from __future__ import annotations

from typing import Any

import pytest

from sprout.deploy.analysis import Window, judge
from sprout.router.metrics import Stats
from sprout.spec.models import CanaryAnalysis

RULES = CanaryAnalysis(min_requests=20, max_error_rate=0.01, max_latency_ratio=1.5)


def snapshot(
    ok: int, errors: int, latency: float, stats: Stats | None = None
) -> tuple[Stats, dict[str, Any]]:
    """Feed a group's counters `ok` 200s and `errors` 500s of `latency` seconds; return them and a snapshot."""
    stats = stats or Stats()
    for _ in range(ok):
        stats.observe(200, latency)
    for _ in range(errors):
        stats.observe(500, latency)
    return stats, stats.snapshot()


CASES = [
    # (name, canary ok/err/latency, stable ok/err/latency, outcome, reason)
    (
        "too few requests",
        (10, 0, 0.01),
        (500, 0, 0.01),
        "wait",
        "canary served 10 requests, analysis needs 20",
    ),
    (
        "healthy canary",
        (100, 0, 0.01),
        (1000, 0, 0.01),
        "promote",
        "canary healthy: 100 requests, 5xx 0.0% vs 0.0%, p95 10 ms vs 10 ms",
    ),
    (
        "5 % errors",
        (95, 5, 0.01),
        (1000, 0, 0.01),
        "rollback",
        "canary 5xx rate 5.0% (5/100) vs stable 0.0%: above the allowed +1.0%",
    ),
    (
        "errors no worse than stable",
        (98, 2, 0.01),
        (980, 20, 0.01),
        "promote",
        "canary healthy: 100 requests, 5xx 2.0% vs 2.0%, p95 10 ms vs 10 ms",
    ),
    (
        "slow canary",
        (100, 0, 0.2),
        (1000, 0, 0.02),
        "rollback",
        "canary p95 242 ms is 10.0x stable's 24 ms: above the allowed 1.5x",
    ),
    (
        "a few milliseconds slower is a fresh instance, not a regression",
        (100, 0, 0.009),
        (1000, 0, 0.005),
        "promote",
        "canary healthy: 100 requests, 5xx 0.0% vs 0.0%, p95 10 ms vs 5 ms",
    ),
    (
        "sub-floor latencies are noise",
        (100, 0, 0.002),
        (1000, 0, 0.0008),
        "promote",
        "canary healthy: 100 requests, 5xx 0.0% vs 0.0%, p95 2 ms vs 1 ms",
    ),
]


@pytest.mark.parametrize(("name", "canary", "stable", "outcome", "reason"), CASES, ids=[c[0] for c in CASES])
def test_verdicts(
    name: str,
    canary: tuple[int, int, float],
    stable: tuple[int, int, float],
    outcome: str,
    reason: str,
) -> None:
    _, canary_snap = snapshot(*canary)
    _, stable_snap = snapshot(*stable)
    verdict = judge(Window.between(None, canary_snap), Window.between(None, stable_snap), RULES)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)


def test_window_counts_only_the_interval() -> None:
    stats, before = snapshot(1000, 50, 0.3)
    _, after = snapshot(100, 0, 0.01, stats)
    window = Window.between(before, after)
    assert (window.requests, window.errors) == (100, 0)
    assert 0.005 < window.p95 <= 0.01


def test_empty_window() -> None:
    _, snap = snapshot(0, 0, 0.0)
    assert Window.between(snap, snap) == Window(requests=0, errors=0, p95=0.0)

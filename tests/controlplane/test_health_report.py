"""Live figures from two `/v1/health` readings (`sprout health`, the dashboard; live runs in tests/e2e)."""

from __future__ import annotations

from typing import Any

from sprout.report import health_report
from sprout.router.metrics import Stats


def _reading(
    at: float, served: dict[str, list[tuple[int, float]]], env: str = "production"
) -> dict[str, Any]:
    instances = []
    for instance_id, requests in served.items():
        stats = Stats()
        for status, seconds in requests:
            stats.observe(status, seconds)
        doc = {**stats.snapshot(), "state": "healthy"}
        instances.append(
            {"id": instance_id, "group": "blue", "zone": "a", "version": "v1", "state": "running",
             "health": "healthy", "router": doc if instance_id != "i-new" else None}
        )  # fmt: skip
    environment = {"app": "shop", "env": env, "url": "http://shop.localhost:8080/", "version": "v1",
                   "healthy": 2, "desired": 2, "instances": instances}  # fmt: skip
    return {"time": at, "router": {"running": True}, "environments": [environment]}


def test_rates_shares_and_quantiles_cover_the_window_only() -> None:
    before = _reading(100.0, {"i-1": [(200, 0.01)] * 10, "i-2": [], "i-new": []})
    after = _reading(
        102.0, {"i-1": [(200, 0.01)] * 10 + [(200, 0.004)] * 6 + [(500, 0.2)] * 2, "i-2": [], "i-new": []}
    )
    report = health_report(before, after)
    assert report["window"] == 2.0
    (env,) = report["environments"]
    rows = {row["id"]: row for row in env["instances"]}
    assert rows["i-1"]["requests"] == 8
    assert rows["i-1"]["rps"] == 4.0
    assert rows["i-1"]["percent"] == {"1xx": 0.0, "2xx": 75.0, "3xx": 0.0, "4xx": 0.0, "5xx": 25.0}
    assert 2.5 < rows["i-1"]["p50_ms"] <= 5.0
    assert 100 < rows["i-1"]["p99_ms"] <= 250
    # An instance that served nothing has no shares or latency; one the router does not know says so.
    assert (
        rows["i-2"]["requests"] == 0
        and rows["i-2"]["percent"]["2xx"] is None
        and rows["i-2"]["p50_ms"] is None
    )
    assert rows["i-new"]["router_state"] is None and "requests" not in rows["i-new"]
    assert env["total"]["requests"] == 8


def test_env_filter_keeps_only_that_environment() -> None:
    before = _reading(0.0, {"i-1": []}, env="staging")
    after = _reading(1.0, {"i-1": [(200, 0.001)]}, env="staging")
    assert health_report(before, after, "production")["environments"] == []
    assert health_report(before, after, "staging")["environments"][0]["total"]["rps"] == 1.0

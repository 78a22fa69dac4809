"""How a health-check result reads on every screen, and when a run of them means the path is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from sprout.healthcheck import describe_check, wrong_path, wrong_path_message
from sprout.router.health import CheckResult
from sprout.router.target import Target


def check(status: int | None = None, error: str | None = None, **extra: Any) -> dict[str, Any]:
    ok = status is not None and 200 <= status < 400
    doc = {"path": "/healthz", "ok": ok, "status": status, "error": error, "latency_ms": 1.25, "at": 1.0}
    return {"repeats": 1, **doc, **extra}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (None, "no health check yet"),
        (check(200), "GET /healthz answered 200 in 1.2 ms"),
        (check(404, repeats=5), "GET /healthz answered 404 in 1.2 ms (5 checks in a row)"),
        (check(503, latency_ms=42.4), "GET /healthz answered 503 in 42 ms"),
        (check(error="connection refused"), "GET /healthz: connection refused after 1.2 ms"),
        (check(error="no answer within 1s", latency_ms=1000.2, repeats=3),
         "GET /healthz: no answer within 1s (3 checks in a row)"),
        (check(error="closed without an HTTP answer"), "GET /healthz: closed without an HTTP answer after 1.2 ms"),
        (check(301, path="/up"), "GET /up answered 301 in 1.2 ms"),
    ],
)  # fmt: skip
def test_describe_check(doc: dict[str, Any] | None, expected: str) -> None:
    assert describe_check(doc) == expected


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([check(404, repeats=3), check(404, repeats=7)], ("/healthz", 404)),
        ([check(404, repeats=3)], ("/healthz", 404)),
        # Too early to tell: one instance has answered 404 only twice.
        ([check(404, repeats=3), check(404, repeats=2)], None),
        # Not every instance says the same: one may be serving a different app.
        ([check(404, repeats=3), check(410, repeats=3)], None),
        ([check(404, repeats=3), None], None),
        # 5xx and connection errors may pass (a slow start, a dependency down): keep waiting.
        ([check(503, repeats=9)], None),
        ([check(error="connection refused", repeats=9)], None),
        ([check(200, repeats=9)], None),
        ([], None),
    ],
)
def test_wrong_path(checks: list[dict[str, Any] | None], expected: tuple[str, int] | None) -> None:
    assert wrong_path(checks) == expected


def test_wrong_path_message() -> None:
    assert wrong_path_message("/nope", 404) == (
        "every health check of GET /nope answered 404 for 3 intervals: the path is wrong, not slow; "
        "set [health] path in sprout.toml to a path the app answers with 2xx/3xx (or make the app answer "
        "this one) and try again"
    )


def test_a_target_counts_checks_in_a_row_with_one_outcome() -> None:
    target = Target("t", "127.0.0.1", 1, lambda _: None)
    outcomes = [(404, None), (404, None), (404, None), (None, "connection refused"), (200, None), (200, None)]
    seen = []
    for n, (status, error) in enumerate(outcomes):
        ok = status == 200
        target.note_check(CheckResult("/healthz", ok, status, error, latency=0.001 * n, at=float(n)))
        doc = target.describe()["check"]
        seen.append((doc["status"], doc["error"], doc["repeats"]))
    assert seen == [
        (404, None, 1),
        (404, None, 2),
        (404, None, 3),
        (None, "connection refused", 1),
        (200, None, 1),
        (200, None, 2),
    ]

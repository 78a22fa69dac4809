"""What the dashboard tells people: money like `sprout cost`, rollbacks as such, routine events folded, and
a read-only log view per instance behind the same sign-in."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from test_dashboard import AUTH, TOKEN, Plane

from sprout.api.app import create_app
from sprout.dashboard.views import folded, money, releases


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0.00"),
        (0.0039123, "0.003912"),
        (0.0017, "0.001700"),
        (0.5, "0.5000"),
        (1.5, "1.500"),
        (12.3456, "12.35"),
        (1234.567, "1234.57"),
    ],
)
def test_money_has_four_significant_digits(value: float, shown: str) -> None:
    assert money(value) == shown


def _deployment(n: int, version: str, started: float, reason: str) -> dict[str, object]:
    return {"id": n, "app": "shop", "env": "production", "version": version, "strategy": "bluegreen",
            "state": "done", "outcome": "succeeded", "started_at": started, "user": "ann", "reason": reason}  # fmt: skip


def test_a_rolled_back_release_says_so() -> None:
    deployments = [_deployment(1, "v1", 100.0, "v1 serves 100% of traffic"),
                   _deployment(2, "v2", 200.0, "v2 serves 100% of traffic")]  # fmt: skip
    rollback = {"time": 300.0, "app": "shop", "env": "production", "version": "v1", "user": "bob",
                "summary": "instant rollback to v1 (warm fleet blue)"}  # fmt: skip
    rows = releases(deployments, [rollback])
    assert [(r["strategy"], r["version"], r["outcome"], r["reason"]) for r in rows] == [
        ("rollback", "v1", "instant", "instant rollback to v1 (warm fleet blue)"),
        ("bluegreen", "v2", "rolled back", "rolled back to v1 by bob at 1970-01-01 00:05:00 UTC"),
        ("bluegreen", "v1", "succeeded", "v1 serves 100% of traffic"),
    ]


def test_routine_events_fold_into_one_row_per_kind() -> None:
    def event(t: float, kind: str, message: str) -> dict[str, object]:
        return {"time": t, "app": None, "env": None, "kind": kind, "message": message}

    events = [
        event(1, "router.table", "routing table pushed: 1 route"),
        event(2, "router.table", "routing table pushed: 1 route"),
        event(3, "instance.replace", "i-1 died"),
        event(4, "router.table", "routing table pushed: 2 routes"),
        event(5, "router.table", "routing table pushed: 2 routes"),
        event(6, "router.table", "routing table pushed: 1 route"),
        event(7, "instance.replace", "i-2 died"),
        event(8, "instance.replace", "i-3 died"),
    ]
    assert [(r["message"], r["count"], r["first"]) for r in folded(events, 10)] == [
        ("i-3 died", 1, 8),
        ("i-2 died", 1, 7),
        ("routing table pushed: 1 route", 5, 1),
        ("i-1 died", 1, 3),
    ]
    assert len(folded(events, 2)) == 2


def test_instance_rows_link_to_a_log_view_behind_the_same_sign_in() -> None:
    plane = Plane()
    client = TestClient(create_app(plane, plane, TOKEN), follow_redirects=False)  # type: ignore[arg-type]
    assert client.get("/dashboard/logs?instance=i-abc123").status_code == 401
    code = client.post("/v1/dashboard/codes", headers=AUTH).json()["code"]
    assert client.get(f"/dashboard/login?code={code}").status_code == 303
    page = client.get("/dashboard")
    assert (
        """<a href="/dashboard/logs?instance=i-abc123" title="this instance's log">i-abc123</a>"""
        in page.text
    )
    view = client.get("/dashboard/logs?instance=i-abc123")
    assert view.status_code == 200
    assert view.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<h1>Sprout — log of i-abc123</h1>" in view.text
    # The app's text is escaped and stripped of escape sequences.
    assert "<code>boom &lt;script&gt;alert(2)&lt;/script&gt; red</code>" in view.text
    assert "\x1b" not in view.text
    other = client.get("/dashboard/logs?instance=<i>")
    assert "<h1>Sprout — log of &lt;i&gt;</h1>" in other.text
    assert "no lines from this instance in the log store" in other.text

"""The dashboard behind the API: one-time sign-in links, a cookie that opens the page and nothing else."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from sprout.api.app import create_app
from sprout.dashboard import sessions as sessions_module
from sprout.dashboard.sessions import DashboardSessions
from sprout.router.metrics import Stats

TOKEN = "t0ken-for-dashboard-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Plane:
    """A control plane and release engine answering with fixed but realistic documents."""

    def __init__(self) -> None:
        self.served = 0

    def health(self) -> dict[str, Any]:
        self.served += 10
        stats = Stats()
        for _ in range(self.served):
            stats.observe(200, 0.003)
        stats.observe(500, 0.2)
        instance = {"id": "i-abc123", "group": "blue", "zone": "a", "version": "v7", "state": "running",
                    "health": "healthy", "router": {**stats.snapshot(), "state": "healthy"}}  # fmt: skip
        env = {"app": "shop", "env": "production", "url": "http://shop.localhost:8080/", "version": "v7",
               "healthy": 1, "desired": 2, "instances": [instance],
               "groups": [{"name": "blue", "version": "v7", "capacity": 2, "weight": 100}]}  # fmt: skip
        return {"daemon": {"pid": 42, "uptime": 12.0}, "router": {"running": True}, "environments": [env],
                "time": time.time()}  # fmt: skip

    def events(self, query: dict[str, str]) -> dict[str, Any]:
        return {"events": [{"time": 0.0, "app": "shop", "env": "production", "kind": "instance.replace",
                            "message": "i-old died <script>alert(1)</script>"}]}  # fmt: skip

    def bill(self) -> dict[str, Any]:
        return {"currency": "EUR", "since": "2026-11-01T00:00:00Z", "instance_seconds": 7200.0, "spend": 1.5,
                "projected_month": 9.25, "fixed_peak_spend": 2.0, "savings": 0.5, "rate_per_hour": 0.05,
                "hours_left_in_month": 100.0, "above_desired_spend": 0.0}  # fmt: skip

    def deployments(self, query: dict[str, str]) -> dict[str, Any]:
        return {"deployments": [{"id": 3, "app": "shop", "env": "production", "version": "v7",
                                 "strategy": "bluegreen", "state": "done", "outcome": "succeeded",
                                 "started_at": 0.0, "user": "ann", "reason": None}]}  # fmt: skip

    def rollbacks(self, query: dict[str, str]) -> dict[str, Any]:
        return {"rollbacks": []}

    def logs(self, query: dict[str, str]) -> dict[str, Any]:
        lines = [{"id": 1, "ts": 0.0, "source": "instance", "stream": "stderr", "instance": "i-abc123",
                  "version": "v7", "msg": "boom <script>alert(2)</script>\x1b[31m red"}]  # fmt: skip
        return {"lines": [line for line in lines if line["instance"] == query.get("instance")], "last_id": 1}


@pytest.fixture
def client() -> TestClient:
    plane = Plane()
    return TestClient(create_app(plane, plane, TOKEN), follow_redirects=False)  # type: ignore[arg-type]


def sign_in(client: TestClient) -> str:
    code = client.post("/v1/dashboard/codes", headers=AUTH).json()["code"]
    response = client.get(f"/dashboard/login?code={code}")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    return code


def test_the_page_needs_a_session_and_a_code_needs_the_token(client: TestClient) -> None:
    assert client.get("/dashboard").status_code == 401
    assert client.post("/v1/dashboard/codes").status_code == 401
    bogus = client.get("/dashboard/login?code=nope")
    assert bogus.status_code == 401 and "expired or was used" in bogus.text
    assert "set-cookie" not in bogus.headers
    assert client.get("/dashboard/login").status_code == 401


def test_a_code_signs_in_once_and_the_cookie_opens_only_the_page(client: TestClient) -> None:
    code = client.post("/v1/dashboard/codes", headers=AUTH).json()["code"]
    response = client.get(f"/dashboard/login?code={code}")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    # Spent: a second use (a link copied from history, say) signs nobody in.
    assert client.get(f"/dashboard/login?code={code}").status_code == 401
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in (
        "shop/production",
        "version v7",
        "1/2 healthy",
        "i-abc123",
        "group blue v7 at 100%",
        "bluegreen",
        "1.500 EUR this month so far (2.0 instance-hours since 2026-11-01 00:00 UTC)",
        "projected 9.250 EUR",
        "would have cost 2.000 EUR",
        "autoscaling saved 0.5000 EUR (25%)",
    ):
        assert text in page.text, text
    # Live figures: 10 more requests between the two readings, none failed in between.
    assert "100%" in page.text
    # The app's own text is escaped, never run.
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # The cookie opens nothing of the API, and only reads the page.
    for method, path in [("GET", "/v1/status"), ("GET", "/v1/health"), ("POST", "/v1/shutdown"),
                         ("POST", "/v1/dashboard/codes"), ("POST", "/dashboard"),
                         ("POST", "/dashboard/logs"), ("GET", "/v1/logs")]:  # fmt: skip
        assert client.request(method, path).status_code == 401, (method, path)


def test_forged_expired_or_malformed_cookies_are_refused(client: TestClient) -> None:
    sign_in(client)
    assert client.get("/dashboard").status_code == 200
    client.cookies.clear()
    client.cookies.set("sprout_dashboard", "forged", path="/dashboard")
    assert client.get("/dashboard").status_code == 401
    client.cookies.clear()
    assert (
        client.get("/dashboard", headers={"Cookie": 'sprout_dashboard="unterminated; x=\\'}).status_code
        == 401
    )
    # A non-ASCII value (as latin-1 bytes, the way a hostile client can send it) is refused, not a 500.
    hostile = 'sprout_dashboard="caf\u00e9"'.encode("latin-1")
    assert client.get("/dashboard", headers=[(b"cookie", hostile)]).status_code == 401  # type: ignore[list-item]


def test_codes_and_sessions_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    book = DashboardSessions()
    code = book.new_code()
    start = time.monotonic()
    monkeypatch.setattr(sessions_module.time, "monotonic", lambda: start + sessions_module.CODE_SECONDS + 1)
    assert book.redeem(code) is None
    code = book.new_code()
    session = book.redeem(code)
    assert session is not None
    scope = {"type": "http", "method": "GET", "path": "/dashboard",
             "headers": [(b"cookie", f"sprout_dashboard={session}".encode())]}  # fmt: skip
    assert book.lets_through(scope)
    later = start + sessions_module.CODE_SECONDS + sessions_module.SESSION_SECONDS + 2
    monkeypatch.setattr(sessions_module.time, "monotonic", lambda: later)
    assert not book.lets_through(scope)


def test_every_dashboard_response_sends_the_security_headers(client: TestClient) -> None:
    code = client.post("/v1/dashboard/codes", headers=AUTH).json()["code"]
    login = client.get(f"/dashboard/login?code={code}")
    page = client.get("/dashboard")
    expired = client.get(f"/dashboard/login?code={code}")
    assert (login.status_code, page.status_code, expired.status_code) == (303, 200, 401)
    # The page's one inline element is its style sheet: the policy allows exactly it, by hash, and no script.
    styles = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert not re.search(r"(?i)<script|\son\w+=|\sstyle=|javascript:", page.text)
    for response in (login, page, expired):
        assert response.headers["content-security-policy"] == (
            f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"

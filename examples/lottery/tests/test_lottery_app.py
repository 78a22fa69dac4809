"""The lottery as entrants and the admin see it: one ticket per email, closing, a verifiable draw."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from lottery import entries, verify
from lottery.app import create_app
from lottery.config import Settings
from starlette.testclient import TestClient

JSON = {"accept": "application/json"}
ADMIN = {"accept": "application/json", "authorization": "Bearer s3cret"}


def _enter(client: TestClient, email: str) -> tuple[int, dict[str, object]]:
    response = client.post("/enter", data={"email": email}, headers=JSON)
    return response.status_code, response.json()


def test_one_ticket_per_email_and_a_retry_gets_the_same_ticket(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    status, first = _enter(client, "Rudolph@North.Pole ")
    assert status == 201 and first["new"] is True and str(first["ticket"]).startswith("XMAS-")
    status, again = _enter(client, "rudolph@north.pole")
    assert status == 200 and again == {"ticket": first["ticket"], "new": False}
    assert client.get("/", headers=JSON).json()["entrants"] == 1


def test_the_home_page_shows_the_counter_commitment_and_my_ticket(
    settings: Settings, engine: sa.Engine
) -> None:
    client = TestClient(create_app(settings))
    client.post("/enter", data={"email": "elf@north.pole"})
    page = client.get("/").text
    assert "<strong>1</strong> entrant so far" in page
    assert entries.round_info(engine)["commitment"] in page
    assert "Your ticket: <strong>XMAS-" in page
    assert "served by instance <strong>i-test-1</strong>" in page


def test_invalid_email_is_a_400(settings: Settings) -> None:
    status, body = _enter(TestClient(create_app(settings)), "not-an-email")
    assert status == 400 and body["error"] == "invalid_email"


def test_concurrent_duplicate_entries_make_one_ticket_each(engine: sa.Engine) -> None:
    emails = [f"kid{i % 30}@example.org" for i in range(90)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda e: entries.enter(engine, e), emails))
    assert entries.count(engine) == 30
    by_email: dict[str, set[str]] = {}
    for email, entry in zip(emails, results, strict=True):
        by_email.setdefault(email, set()).add(entry.ticket)
    assert all(len(tickets) == 1 for tickets in by_email.values())
    assert sum(entry.new for entry in results) == 30


def test_admin_needs_the_token(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    assert client.post("/admin/draw", headers=JSON).status_code == 403
    assert client.post("/admin/draw", headers=JSON | {"authorization": "Bearer nope"}).status_code == 403
    disabled = TestClient(create_app(dataclasses.replace(settings, admin_token=None)))
    response = disabled.post("/admin/draw", headers=ADMIN)
    assert response.status_code == 403
    assert response.json() == {"error": "The draw is disabled: set LOTTERY_ADMIN_TOKEN to enable /admin."}


def test_draw_is_committed_closed_and_reproducible(settings: Settings, tmp_path: Path) -> None:
    client = TestClient(create_app(settings))
    published = client.get("/", headers=JSON).json()["commitment"]
    for i in range(12):
        _enter(client, f"child{i}@example.org")
    assert client.get("/tickets.txt").status_code == 409  # not before entries close

    closed = client.post("/admin/close", headers=ADMIN).json()
    assert closed["status"] == "closed" and closed["seed"] is None and closed["ticket_count"] == 12
    status, body = _enter(client, "late@example.org")
    assert status == 409 and body["error"] == "closed"

    drawn = client.post("/admin/draw", headers=ADMIN).json()
    assert drawn["status"] == "drawn" and drawn["commitment"] == published
    tickets = client.get("/tickets.txt").text.split()
    assert len(tickets) == 12 and verify.tickets_digest(tickets) == closed["tickets_digest"]
    assert verify.commitment(drawn["seed"]) == published
    assert verify.draw_winners(drawn["seed"], tickets, 3) == drawn["winners"]
    assert client.get("/verify", headers=JSON).json()["checks"] == {
        "commitment_matches": True,
        "tickets_match": True,
        "winners_match": True,
    }
    assert client.post("/admin/draw", headers=ADMIN).status_code == 409

    (tmp_path / "tickets.txt").write_text(client.get("/tickets.txt").text)
    (tmp_path / "verify.py").write_text(client.get("/verify.py").text)
    args = ["--seed", drawn["seed"], "--commitment", published, "--digest", closed["tickets_digest"]]
    result = subprocess.run(
        [sys.executable, str(tmp_path / "verify.py"), *args, "--tickets", str(tmp_path / "tickets.txt")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
    assert f"prize 1: {drawn['winners'][0]}" in result.stdout


def test_the_verifier_catches_a_swapped_seed(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("XMAS-A\nXMAS-B\n")
    seed = "00" * 32
    code = verify.main(["--seed", seed, "--commitment", "ff" * 32, "--tickets", str(tmp_path / "t.txt")])
    assert code == 1


def test_winners_do_not_depend_on_ticket_order() -> None:
    seed = "ab" * 32
    tickets = [f"XMAS-{i:04d}" for i in range(50)]
    assert verify.draw_winners(seed, tickets, 5) == verify.draw_winners(seed, list(reversed(tickets)), 5)
    assert verify.draw_winners(seed, tickets, 5) != verify.draw_winners("cd" * 32, tickets, 5)


def test_health_and_readiness(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    response = client.get("/healthz")
    assert response.json()["status"] == "ok" and response.headers["x-sprout-version"] == "v-test"
    assert client.get("/readyz").json() == {"ready": True, "database": "ok", "sessions": "ok"}

"""Issue test 4: 1,000 concurrent entries (300 duplicates) on MariaDB through the router make exactly 700
tickets, and the draw is reproducible from the revealed seed, whose hash was published before closing."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from example_procs import EXAMPLES, AppProcess, RouterProcess, app_env, release, route_to

from sprout.services import memcached
from sprout.services.memcached import MemcachedNode

HOST = "lottery.localhost"
JSON = {"accept": "application/json"}
UNIQUE, DUPLICATES = 700, 300
# All entries are sent at once; the client keeps at most this many connections to the router open.
CONNECTIONS = 200
ADMIN = {"accept": "application/json", "authorization": "Bearer e2e-admin"}

pytestmark = pytest.mark.slow


async def _enter_all(base_url: str, emails: list[str]) -> list[tuple[str, httpx.Response]]:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"host": HOST}, timeout=60, limits=limits
    ) as client:
        responses = await asyncio.gather(
            *(client.post("/enter", data={"email": e}, headers=JSON) for e in emails)
        )
    return list(zip(emails, responses, strict=True))


def test_one_ticket_per_email_under_load_and_a_reproducible_draw(
    mariadb_url: str,
    memcached_nodes: list[MemcachedNode],
    start_app: Callable[..., AppProcess],
    start_router: Callable[[], RouterProcess],
    tmp_path: Path,
) -> None:
    env = app_env("lottery", mariadb_url, memcached.session_store_url(memcached_nodes))
    env |= {"LOTTERY_ADMIN_TOKEN": "e2e-admin", "LOTTERY_PRIZES": "5"}
    assert release("lottery", env).strip().endswith("round opened")
    instances = [start_app("lottery", env, "a", "i-a"), start_app("lottery", env, "b", "i-b")]
    router = start_router()
    route_to(router, "lottery", HOST, instances)
    with httpx.Client(base_url=router.url, headers={"host": HOST}, timeout=10) as admin:
        published = admin.get("/", headers=JSON).json()["commitment"]

        emails = [f"child{i}@example.org" for i in range(UNIQUE)]
        emails += random.Random(4).choices(emails, k=DUPLICATES)
        random.Random(5).shuffle(emails)
        results = asyncio.run(_enter_all(router.url, emails))

        bad = [r.text for _, r in results if r.status_code >= 500][:3]
        assert Counter(r.status_code for _, r in results) == {201: UNIQUE, 200: DUPLICATES}, bad
        tickets_of: dict[str, set[str]] = {}
        for email, response in results:
            tickets_of.setdefault(email, set()).add(response.json()["ticket"])
        assert len(tickets_of) == UNIQUE and all(len(t) == 1 for t in tickets_of.values())
        assert admin.get("/", headers=JSON).json()["entrants"] == UNIQUE
        assert release("lottery", env).strip().endswith("round unchanged")  # a redeploy keeps the commitment

        closed = admin.post("/admin/close", headers=ADMIN).json()
        assert (
            closed["ticket_count"] == UNIQUE and closed["commitment"] == published and closed["seed"] is None
        )
        drawn = admin.post("/admin/draw", headers=ADMIN).json()
        (tmp_path / "tickets.txt").write_text(admin.get("/tickets.txt").text)
        (tmp_path / "verify.py").write_text(admin.get("/verify.py").text)

    verify = [sys.executable, str(tmp_path / "verify.py"), "--seed", drawn["seed"], "--commitment", published]
    verify += [
        "--digest",
        closed["tickets_digest"],
        "--tickets",
        str(tmp_path / "tickets.txt"),
        "--winners",
        "5",
    ]
    result = subprocess.run(verify, capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stdout
    assert "commitment matches" in result.stdout and "ticket list of 700 matches" in result.stdout
    winners = [line.split(": ")[1] for line in result.stdout.splitlines() if line.startswith("prize")]
    assert winners == drawn["winners"] and len(winners) == 5
    assert set(winners) <= {t for ts in tickets_of.values() for t in ts}
    assert (EXAMPLES / "lottery" / "lottery" / "verify.py").read_text() == (
        tmp_path / "verify.py"
    ).read_text()

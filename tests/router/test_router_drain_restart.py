"""Acceptance 3 (drain with in-flight requests and its deadline, on both engines) and 5 (restart from the state file)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import get, group, route, table, wait_for

pytestmark = pytest.mark.slow


def _fire(router, path: str, n: int) -> list:
    """Start n concurrent requests at once (clients are built first so the requests overlap)."""
    pool = ThreadPoolExecutor(max_workers=n)
    clients = [httpx.Client(timeout=30) for _ in range(n)]
    barrier = threading.Barrier(n)

    def one(client: httpx.Client) -> tuple[int, float]:
        barrier.wait()
        with client:
            r = client.get(f"{router.url}{path}", headers={"Host": "d.localhost"})
            return r.status_code, time.monotonic()

    return [pool.submit(one, c) for c in clients]


#: A drain deadline no 2 s request gets near, however loaded the machine.
DRAIN_DEADLINE = 30


def test_drain_lets_in_flight_finish(start_backend, start_engine):
    old, new = start_backend("v1"), start_backend("v2")
    router = start_engine()
    router.admin.put_table(table(route("d", [group("g", [old], healthy=True)], drain_timeout=DRAIN_DEADLINE)))
    futures = _fire(router, "/sleep?s=2", 50)
    wait_for(lambda: router.admin.target(f"g-{old.port}")["in_flight"] == 50, 20, "50 requests in flight")
    # New table: the old target is gone (drained automatically), a new one takes new requests.
    started = time.monotonic()
    router.admin.put_table(table(route("d", [group("g", [new], healthy=True)], drain_timeout=DRAIN_DEADLINE)))
    assert router.admin.target(f"g-{old.port}")["state"] == "draining"
    with httpx.Client() as client:
        assert get(client, router, "/", "d.localhost").text.startswith("v2")
    assert router.admin.wait_drained(f"g-{old.port}", DRAIN_DEADLINE + 5)
    drained_after = time.monotonic() - started
    statuses = [f.result()[0] for f in futures]
    assert statuses == [200] * 50
    # The drain ended when the last request did (about 2 s), not at its deadline (which would have cut
    # them with 504s): the deadline is far so that a loaded machine's slow requests never reach it.
    assert drained_after < DRAIN_DEADLINE
    assert router.admin.target(f"g-{old.port}")["in_flight"] == 0


def test_drain_deadline_cuts_long_requests_with_504(start_backend, start_engine, engine):
    slow, other = start_backend("v1"), start_backend("v2")
    router = start_engine()
    router.admin.put_table(
        table(route("d", [group("g", [slow], healthy=True), group("h", [other], weight=0)]))
    )
    futures = _fire(router, "/sleep?s=10", 10)
    wait_for(lambda: router.admin.target(f"g-{slow.port}")["in_flight"] == 10, 5, "10 requests in flight")
    started = time.monotonic()
    router.admin.drain(f"g-{slow.port}", timeout=1.0)
    assert router.admin.wait_drained(f"g-{slow.port}", 3)
    assert time.monotonic() - started <= 1.0 + 1.0
    results = [f.result() for f in futures]
    # HAProxy retries the cut GETs on the route's other servers and, finding none with weight, answers 503.
    cut = 504 if engine == "sprout" else 503
    assert [status for status, _ in results] == [cut] * 10
    assert all(done - started <= 2.0 for _, done in results)
    # The drained target left the table; what is left is persisted that way.
    assert [t["id"] for g in router.admin.get_table()["routes"][0]["groups"] for t in g["targets"]] == [
        f"h-{other.port}"
    ]


def test_restart_after_kill_routes_as_before(start_backend, start_router):
    blue, green, other = start_backend("v1"), start_backend("v2"), start_backend("v3")
    router = start_router()
    router.admin.put_table(
        table(
            route("shop", [group("blue", [blue], 100), group("green", [green], 0)], hosts=["shop.localhost"]),
            route("site", [group("g", [other])], hosts=["*.site.localhost"], default=True),
        )
    )
    wait_for(lambda: router.admin.health()["routes"]["shop"]["healthy"], 10, "shop healthy")
    router.admin.set_weights("shop", {"blue": 0, "green": 100})
    wait_for(lambda: router.admin.health()["routes"]["site"]["healthy"], 10, "site healthy")

    def observe() -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {}
        with httpx.Client() as client:
            for host in ("shop.localhost", "a.site.localhost", "elsewhere.localhost"):
                seen[host] = {get(client, router, "/", host).text.split()[0] for _ in range(20)}
        return seen

    before = observe()
    assert before == {"shop.localhost": {"v2"}, "a.site.localhost": {"v3"}, "elsewhere.localhost": {"v3"}}
    table_before = router.admin.get_table()
    port = router.port
    router.kill()
    router = start_router(port=port, state=router.state)
    # No admin call: the persisted table is in force as soon as the router says it is listening.
    assert observe() == before
    assert router.admin.get_table() == table_before

"""Acceptance 1: balancing, weights, health thresholds (on both engines), plus headers, errors, cache and admin auth."""

from __future__ import annotations

import collections
import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import get, group, route, table, wait_for, wait_healthy
from sprout.errors import AuthError, ServiceError
from sprout.router.client import RouterAdmin


def test_balancing_spreads_requests(start_backend, start_engine):
    backends = [start_backend("v1") for _ in range(3)]
    router = start_engine()
    router.admin.put_table(table(route("shop", [group("blue", backends)])))
    wait_healthy(router, [f"blue-{b.port}" for b in backends])
    seen = collections.Counter()
    with httpx.Client() as client:
        for _ in range(150):
            r = get(client, router, "/", "shop.localhost")
            assert r.status_code == 200
            seen[r.text.split()[1]] += 1
    assert set(seen) == {str(b.port) for b in backends}
    assert min(seen.values()) >= 15, seen


def test_weights_move_traffic(start_backend, start_engine):
    blue, green = start_backend("v1"), start_backend("v2")
    router = start_engine()
    router.admin.put_table(table(route("shop", [group("blue", [blue], 100), group("green", [green], 0)])))
    wait_healthy(router, [f"blue-{blue.port}", f"green-{green.port}"])
    with httpx.Client() as client:
        assert {get(client, router, "/", "shop.localhost").text.split()[0] for _ in range(30)} == {"v1"}
        router.admin.set_weights("shop", {"blue": 0, "green": 100})
        assert {get(client, router, "/", "shop.localhost").text.split()[0] for _ in range(30)} == {"v2"}
        router.admin.set_weights("shop", {"blue": 50, "green": 50})
        versions = collections.Counter(
            get(client, router, "/", "shop.localhost").text.split()[0] for _ in range(200)
        )
    assert versions["v1"] > 50 and versions["v2"] > 50, versions


def test_unhealthy_targets_get_nothing_and_thresholds_hold(start_backend, start_engine):
    good, bad = start_backend("v1"), start_backend("v1")
    router = start_engine()
    httpx.post(f"http://{bad.address}/control/fail")
    router.admin.put_table(
        table(route("shop", [group("blue", [good, bad])], health={"healthy_threshold": 3}))
    )
    # A new target is "adding" until healthy_threshold checks pass; a failing one never gets traffic.
    assert router.admin.target(f"blue-{good.port}")["state"] == "adding"
    wait_healthy(router, [f"blue-{good.port}"])
    assert router.admin.target(f"blue-{bad.port}")["state"] == "adding"
    with httpx.Client() as client:
        for _ in range(40):
            assert get(client, router, "/", "shop.localhost").text.split()[1] == str(good.port)
    # The bad one recovers: it needs 3 passing checks, then it shares the load.
    httpx.post(f"http://{bad.address}/control/ok")
    wait_healthy(router, [f"blue-{bad.port}"])
    # Now the good one fails: after unhealthy_threshold failures it leaves rotation.
    httpx.post(f"http://{good.address}/control/fail")
    wait_for(lambda: router.admin.target(f"blue-{good.port}")["state"] == "unhealthy", 5, "unhealthy")
    with httpx.Client() as client:
        for _ in range(40):
            assert get(client, router, "/", "shop.localhost").text.split()[1] == str(bad.port)
    health = router.admin.health()
    assert health["routes"]["shop"]["groups"]["blue"]["healthy"] == 1


def test_routing_by_host_wildcard_default_and_errors(start_backend, start_router):
    a, b = start_backend("va"), start_backend("vb")
    router = start_router()
    router.admin.put_table(
        table(
            route("a", [group("g", [a], healthy=True)], hosts=["a.localhost", "*.a.localhost"]),
            route("b", [group("g2", [b], healthy=True)], hosts=["b.localhost"], default=True),
            route("empty", [group("g3", [])], hosts=["empty.localhost"]),
        )
    )
    with httpx.Client() as client:
        assert get(client, router, "/", "a.localhost").text.startswith("va")
        assert get(client, router, "/", "x.y.a.localhost:8080").text.startswith("va")
        assert get(client, router, "/", "B.LOCALHOST").text.startswith("vb")
        assert get(client, router, "/", "unknown.example").text.startswith("vb")
        r = get(client, router, "/", "empty.localhost")
        assert r.status_code == 503 and r.text == "503 no healthy target\n"
        echoed = json.loads(
            get(client, router, "/headers", "a.localhost", headers={"X-Forwarded-For": "1.2.3.4"}).text
        )
    # No trusted proxy is configured: the client's own X-Forwarded-For is replaced by its address.
    assert echoed["x-forwarded-for"] == "127.0.0.1"
    assert echoed["x-forwarded-proto"] == "http"
    assert echoed["x-forwarded-host"] == "a.localhost"
    assert echoed["x-real-ip"] == "127.0.0.1"
    assert echoed["x-request-id"]
    b.kill()
    with httpx.Client() as client:
        r = get(client, router, "/", "b.localhost")
    assert r.status_code == 502
    assert r.headers["x-request-id"]


def test_hop_by_hop_headers_stripped_and_request_id_kept(start_backend, start_router):
    a = start_backend()
    router = start_router()
    router.admin.put_table(table(route("a", [group("g", [a], healthy=True)])))
    with httpx.Client() as client:
        r = get(
            client,
            router,
            "/headers",
            "a.localhost",
            headers={"Connection": "keep-alive, X-Secret", "X-Secret": "1", "Keep-Alive": "5", "TE": "trailers",
                     "X-Request-Id": "abc-123"},
        )  # fmt: skip
    seen = json.loads(r.text)
    assert "x-secret" not in seen and "keep-alive" not in seen and "te" not in seen
    assert seen["x-request-id"] == "abc-123"
    assert r.headers["x-request-id"] == "abc-123"


def test_streaming_chunked_both_ways_and_head(start_backend, start_router):
    a = start_backend()
    router = start_router()
    router.admin.put_table(table(route("a", [group("g", [a], healthy=True)])))
    with httpx.Client() as client:
        r = get(client, router, "/stream?n=50", "a.localhost")
        assert r.text == "".join(f"chunk {i}\n" for i in range(50))
        assert r.headers["transfer-encoding"] == "chunked"

        def gen():
            for i in range(100):
                yield b"x" * 1000 + str(i).encode()

        r = client.post(f"{router.url}/echo", content=gen(), headers={"Host": "a.localhost"})
        assert r.content == b"".join(b"x" * 1000 + str(i).encode() for i in range(100))
        r = client.head(f"{router.url}/", headers={"Host": "a.localhost"})
        assert r.status_code == 200 and r.content == b""
        assert (
            get(client, router, "/", "a.localhost").status_code == 200
        )  # connection still usable after HEAD


def test_edge_cache_hits_and_flushes_on_version_change(start_backend, start_router):
    v1, v2 = start_backend("v1"), start_backend("v2")
    router = start_router()
    router.admin.put_table(table(route("a", [group("g", [v1], healthy=True)], cache=True)))
    with httpx.Client() as client:
        first = get(client, router, "/cache", "a.localhost")
        second = get(client, router, "/cache", "a.localhost")
        assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
        assert first.text == second.text == "v1 hit 1"
        assert second.headers["x-request-id"] != first.headers["x-request-id"]
        private = [get(client, router, "/private", "a.localhost").text for _ in range(2)]
        assert private == ["v1 hit 2", "v1 hit 3"]
        router.admin.put_table(table(route("a", [group("g", [v2], healthy=True)], cache=True)))
        third = get(client, router, "/cache", "a.localhost")
        assert third.headers["x-cache"] == "MISS" and third.text == "v2 hit 1"


def test_admin_requires_token_and_reports(start_backend, start_router):
    a = start_backend()
    router = start_router()
    assert httpx.get(f"http://127.0.0.1:{router.admin_port}/healthz").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{router.admin_port}/table").status_code == 401
    with pytest.raises(AuthError):
        RouterAdmin(f"http://127.0.0.1:{router.admin_port}", "wrong").get_table()
    with pytest.raises(ServiceError, match="cannot reach it"):
        RouterAdmin("http://127.0.0.1:1", "x").get_table()
    assert router.admin.ping()
    router.admin.put_table(table(route("a", [group("g", [a], healthy=True)])))
    with httpx.Client() as client:
        for _ in range(20):
            get(client, router, "/", "a.localhost")
        get(client, router, "/missing-route", "nowhere.localhost")
    m = router.admin.metrics()
    t = m["targets"][f"g-{a.port}"]
    assert t["requests"]["2xx"] == 20 and t["in_flight"] == 0
    assert 0 < t["latency"]["p50"] <= t["latency"]["p99"]
    assert m["groups"]["a/g"]["requests"]["2xx"] == 20
    families = {f.name: f for f in text_string_to_metric_families(router.admin.metrics_text())}
    counted = {
        (s.labels["route"], s.labels["group"], s.labels["class"]): s.value
        for s in families["sprout_router_target_requests"].samples
    }
    assert counted[("a", "g", "2xx")] == 20
    detail = router.admin.target(f"g-{a.port}")
    assert set(detail) >= {"id", "state", "healthy", "in_flight", "zone", "version", "group", "route"}
    rows = router.access_rows(21)
    assert len(rows) == 21
    assert set(rows[0]) == {"time", "request_id", "host", "method", "path", "status", "bytes", "duration",
                            "target", "version", "zone", "retries", "route"}  # fmt: skip
    assert [r["path"] for r in rows if r["status"] == 404] == ["/missing-route"]


def test_bad_table_is_rejected_and_old_one_kept(start_backend, start_router):
    a = start_backend()
    router = start_router()
    good = route("a", [group("g", [a], healthy=True)])
    router.admin.put_table(table(good))
    from sprout.errors import UserError

    with pytest.raises(UserError, match="expected a JSON object"):
        router.admin.put_table({"routes": "none"})
    assert [r["name"] for r in router.admin.get_table()["routes"]] == ["a"]
    # A bad entry is rejected alone: the others are applied.
    bad = {"name": "x", "groups": [{"name": "g", "targets": [{"id": "t", "address": "nope"}]}]}
    answer = router.admin.put_table(table(good, bad))
    assert answer["rejected"] == [
        {"route": "x", "error": "groups.0.targets.0.address: Value error, must be host:port"}
    ]
    assert [r["name"] for r in router.admin.get_table()["routes"]] == ["a"]

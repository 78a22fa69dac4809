"""The router reports each target's last health check: the status answered, or why none was, and how often."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from conftest import group, route, table, wait_for
from loopback import free_port


def test_each_target_shows_its_last_check(start_backend, start_router):
    good, failing = start_backend("v1"), start_backend("v1")
    httpx.post(f"http://{failing.address}/control/fail")
    refused = free_port()  # nobody listens there
    # Accepts connections (the kernel's backlog) and never answers: every check times out.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        router = start_router()
        blue = group("blue", [good, failing])
        blue["targets"] += [
            {"id": "refused", "address": f"127.0.0.1:{refused}", "zone": "a", "version": "v1"},
            {"id": "silent", "address": f"127.0.0.1:{silent.getsockname()[1]}", "zone": "b", "version": "v1"},
        ]
        router.admin.put_table(table(route("shop", [blue], health={"interval": 0.2, "timeout": 0.3})))

        def check(target_id: str) -> dict[str, Any]:
            return router.admin.target(target_id)["check"] or {}

        ids = [f"blue-{good.port}", f"blue-{failing.port}", "refused", "silent"]
        wait_for(lambda: all(check(t).get("repeats", 0) >= 3 for t in ids), 15, "3 checks of each target")
        seen = {t: check(t) for t in ids}
        for doc in seen.values():
            assert doc["path"] == "/healthz"
            assert doc["latency_ms"] >= 0 and doc["at"] > 0
        assert (seen[ids[0]]["ok"], seen[ids[0]]["status"], seen[ids[0]]["error"]) == (True, 200, None)
        assert (seen[ids[1]]["ok"], seen[ids[1]]["status"], seen[ids[1]]["error"]) == (False, 503, None)
        assert (seen["refused"]["ok"], seen["refused"]["status"]) == (False, None)
        assert seen["refused"]["error"] == "connection refused"
        assert (seen["silent"]["ok"], seen["silent"]["status"]) == (False, None)
        assert seen["silent"]["error"] == "no answer within 0.3s"
        # About the timeout: the event loop's timer may fire a hair before 0.3 s as another clock measures it.
        assert seen["silent"]["latency_ms"] >= 270

        # The failing backend recovers: its last check says so.
        httpx.post(f"http://{failing.address}/control/ok")
        wait_for(lambda: check(ids[1])["status"] == 200, 10, "the recovered check")
        assert check(ids[1])["ok"] is True
        # The health document the control plane reads carries the same check.
        targets = router.admin.health()["routes"]["shop"]["groups"]["blue"]["targets"]
        assert targets["refused"]["check"]["error"] == "connection refused"
    finally:
        silent.close()

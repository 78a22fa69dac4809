"""Acceptance 2: zero dropped requests under steady load during weight swaps, drains and a kill -9.

Each runs against both engines: the embedded router and HAProxy driven through its runtime API.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import group, route, table, wait_for

# Load generators: one of these at a time on the suite's workers (the figures need the CPU).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serial")]

#: Long enough for every event below to happen under load, with a few seconds of load after the last.
DURATION = 12.0
RATE = 300.0  # requests per second over all workers, half GET and half POST
WORKERS = 16


class Load:
    """Paced GET/POST load from several threads; counts every outcome by method."""

    def __init__(self, url: str, host: str) -> None:
        self.url = url
        self.host = host
        self.ok: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(WORKERS)]

    def _run(self, index: int) -> None:
        interval = WORKERS / RATE
        next_at = time.monotonic() + index * interval / WORKERS
        n = 0
        with httpx.Client(timeout=10, headers={"Host": self.host}) as client:
            while not self._stop.is_set():
                method = "GET" if (n + index) % 2 == 0 else "POST"
                n += 1
                try:
                    if method == "GET":
                        r = client.get(f"{self.url}/")
                        good = r.status_code == 200
                    else:
                        body = f"payload {index} {n}".encode()
                        r = client.post(f"{self.url}/echo", content=body)
                        good = r.status_code == 200 and r.content == body
                    outcome = f"{method} {r.status_code}"
                except httpx.HTTPError as exc:
                    good = False
                    outcome = f"{method} {type(exc).__name__}"
                with self._lock:
                    if good:
                        self.ok[method] += 1
                    else:
                        self.failed[method] += 1
                        self.failures.append(outcome)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    def run_for(self, seconds: float, events: list[tuple[float, Callable[[], None]]]) -> float:
        started = time.monotonic()
        for t in self._threads:
            t.start()
        for at, action in events:
            time.sleep(max(0.0, started + at - time.monotonic()))
            action()
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        elapsed = time.monotonic() - started
        total = sum(self.ok.values()) + sum(self.failed.values())
        print(
            f"\nload: {total} requests in {elapsed:.1f}s = {total / elapsed:.0f} req/s; ok={dict(self.ok)} "
            f"failed={dict(self.failed)} {collections.Counter(self.failures)}"
        )
        # Enough traffic that every swap happened under load; the rate itself is bench/'s business.
        assert total >= 200, f"only {total} requests sent: the load generator did not run"
        return elapsed


def test_weight_swaps_drop_nothing(start_backend, start_engine):
    blue = [start_backend("v1") for _ in range(2)]
    green = [start_backend("v2") for _ in range(2)]
    router = start_engine()
    router.admin.put_table(table(route("z", [group("blue", blue, 100), group("green", green, 0)])))
    wait_for(
        lambda: all(g["healthy"] == 2 for g in router.admin.health()["routes"]["z"]["groups"].values()), 10
    )
    load = Load(router.url, "z.localhost")
    swaps = [
        (
            1.5 + 0.9 * i,
            lambda i=i: router.admin.set_weights("z", {"blue": 100 * (i % 2), "green": 100 * ((i + 1) % 2)}),
        )
        for i in range(10)
    ]
    load.run_for(DURATION, swaps)
    assert sum(load.failed.values()) == 0, load.failures[:20]
    groups = router.admin.metrics()["groups"]
    # Both sides took real traffic (about half each); how much depends on the machine's load.
    assert groups["z/blue"]["requests"]["2xx"] > 200 and groups["z/green"]["requests"]["2xx"] > 200


def test_removing_targets_with_drain_drops_nothing(start_backend, start_engine):
    backends = [start_backend("v1") for _ in range(3)]
    router = start_engine()
    ids = [f"g-{b.port}" for b in backends]
    router.admin.put_table(table(route("z", [group("g", backends)], drain_timeout=10)))
    wait_for(lambda: router.admin.health()["routes"]["z"]["groups"]["g"]["healthy"] == 3, 10)
    load = Load(router.url, "z.localhost")
    events = [
        (3.0, lambda: router.admin.drain(ids[0], timeout=5)),
        (
            6.0,
            lambda: router.admin.put_table(table(route("z", [group("g", backends[2:])], drain_timeout=10))),
        ),
    ]
    load.run_for(DURATION, events)
    assert sum(load.failed.values()) == 0, load.failures[:20]
    assert router.admin.target(ids[0])["state"] == "drained"
    assert router.admin.target(ids[1])["state"] == "drained"


def test_kill_9_of_one_backend_drops_no_get(start_backend, start_engine):
    a, b = start_backend("v1"), start_backend("v1")
    router = start_engine()
    router.admin.put_table(table(route("z", [group("g", [a, b])])))
    wait_for(lambda: router.admin.health()["routes"]["z"]["groups"]["g"]["healthy"] == 2, 10)
    load = Load(router.url, "z.localhost")
    load.run_for(DURATION, [(4.0, a.kill)])
    print(f"kill -9 scenario: failed GETs={load.failed['GET']} failed POSTs={load.failed['POST']}")
    assert load.failed["GET"] == 0, load.failures[:20]
    # Only POSTs already written to the dying backend may fail; they cannot be many at this rate.
    assert load.failed["POST"] <= 20, load.failures[:20]
    assert router.admin.target(f"g-{a.port}")["state"] == "unhealthy"

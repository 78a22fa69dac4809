"""The live autoscaler turns per-second router counters into desired capacity, with a recorded reason."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sprout.controlplane.autoscale import Autoscaler, route_totals
from sprout.router.metrics import Stats
from sprout.spec import parse_manifest
from sprout.state import StateStore
from sprout.state.models import Group

MANIFEST = {
    "app": {"name": "shop", "web": "python app.py"},
    "instances": {"min": 1, "max": 6},
    "scaling": {"metric": "requests_per_instance", "target": 10, "scale_in_stabilization": "30s"},
}


class Router:
    """The router's admin `metrics()` answer, produced by the router's own counters."""

    def __init__(self) -> None:
        self.groups = {"blue": Stats(), "green": Stats()}

    def serve(self, group: str, requests: int, seconds: float = 0.01) -> None:
        for _ in range(requests):
            self.groups[group].observe(200, seconds)

    def metrics(self) -> dict[str, Any]:
        docs = {}
        for name, stats in self.groups.items():
            doc = stats.snapshot()
            doc.update(route="shop-production", group=name)
            docs[f"shop-production/{name}"] = doc
        docs["other-production/blue"] = {**Stats().snapshot(), "route": "other-production", "group": "blue"}
        return {"groups": docs, "targets": {}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    manifest = parse_manifest(MANIFEST)
    store.upsert_environment("shop", "production", manifest, tmp_path)
    store.add_version("shop", "a" * 64, 1, manifest)
    store.set_current_version("shop", "production", "v1")
    store.set_desired_capacity("shop", "production", 1, "initial")
    store.add_instance(
        "shop", "production", "v1", "a", "127.0.0.1", 1, pid=os.getpid(), state="running", health="healthy"
    )
    return store


def make(store: StateStore, router: Router, clock: Clock, releasing: bool = False) -> Autoscaler:
    return Autoscaler(store, lambda: router, lambda app, env: releasing, clock)


def test_a_burst_scales_out_at_once_one_step_at_a_time_within_max(store: StateStore) -> None:
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    clock.now += 1
    router.serve("blue", 300)
    scaler.tick()
    env = store.get_environment("shop", "production")
    # 30 instances asked for: one decision adds at most +4 (or x2) to 1, then max 6 caps the next.
    assert env is not None and env.desired_capacity == 5
    event = store.list_events("shop", "production", kind="scale")[-1]
    assert event.message.startswith("desired capacity 1 → 5 (target_tracking): ")
    assert event.message.endswith("; limited to 5 (at most +100% or +4 per decision): 1 → 5")
    assert event.data["request_rate"] == 300.0
    clock.now += 1
    router.serve("blue", 300)
    scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 6


def test_no_change_while_within_target(store: StateStore) -> None:
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    for _ in range(5):
        clock.now += 1
        router.serve("blue", 9)
        scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 1
    assert store.list_events("shop", "production", kind="scale") == []


def test_no_scaling_during_a_release(store: StateStore) -> None:
    router, clock = Router(), Clock()
    scaler = make(store, router, clock, releasing=True)
    scaler.tick()
    clock.now += 1
    router.serve("green", 300)
    scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 1


def test_route_totals_sum_only_the_route() -> None:
    router = Router()
    router.serve("blue", 3)
    router.serve("green", 4, seconds=0.2)
    totals = route_totals(router.metrics(), "shop-production")
    assert totals["requests"] == {"total": 7, "5xx": 0}
    assert totals["latency"]["buckets"]["+Inf"] == 7


def test_observed_load_is_kept_per_hour(store: StateStore) -> None:
    router, clock = Router(), Clock()
    clock.now = 3600.0 * 500 - 30  # half a minute before an hour ends
    scaler = make(store, router, clock)
    scaler.tick()
    for second in range(100):
        clock.now += 1
        router.serve("blue", 8 if second % 2 else 4, seconds=0.2 if second == 50 else 0.01)
        scaler.tick()
    hours = store.list_load("shop", "production")
    assert [h.hour for h in hours] == [3600.0 * 499, 3600.0 * 500]
    first = hours[0]
    # the first tick only takes the baseline: 29 seconds of 4 and 8 requests alternating
    assert (first.seconds, first.requests, first.peak_rps) == (29, 15 * 4 + 14 * 8, 8.0)
    assert first.instance_seconds == 29.0
    assert 0 < first.p99 <= 0.01
    # the second hour was flushed once, a minute after it began (61 ticks: both ends), with the slow second
    assert hours[1].seconds == 61 and hours[1].p99 > 0.1


def test_an_instance_lost_while_replaced_is_not_a_scale_in(store: StateStore) -> None:
    # Three desired, one of them crashed (its replacement not launched yet): the load fits the two left
    # "within tolerance", which must not lower desired capacity past the stabilization window.
    store.set_desired_capacity("shop", "production", 3, "test")
    for state in ("running", "failed"):
        store.add_instance(
            "shop", "production", "v1", "b", "127.0.0.1", 2, pid=os.getpid(), state=state, health="healthy"
        )
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    for _ in range(5):
        clock.now += 1
        router.serve("blue", 20)
        scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 3
    assert store.list_events("shop", "production", kind="scale") == []


def test_an_unhealthy_instance_counts_as_capacity_not_as_a_smaller_fleet(store: StateStore) -> None:
    store.set_desired_capacity("shop", "production", 2, "test")
    store.add_instance(
        "shop", "production", "v1", "b", "127.0.0.1", 2, pid=os.getpid(), state="running", health="unhealthy"
    )
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    for _ in range(5):
        clock.now += 1
        router.serve("blue", 10)
        scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 2


def test_an_operators_desired_capacity_holds_for_one_stabilization_window(store: StateStore) -> None:
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    for _ in range(3):
        clock.now += 1
        router.serve("blue", 2)
        scaler.tick()
    # `sprout scale --desired 4` on a quiet site: not undone in the next second, only after the window.
    store.set_desired_capacity("shop", "production", 4, "sprout scale by test")
    for _ in range(29):
        clock.now += 1
        router.serve("blue", 2)
        scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 4
    for _ in range(3):
        clock.now += 1
        router.serve("blue", 2)
        scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 1
    assert "desired capacity 4 → 1" in store.list_events("shop", "production", kind="scale")[-1].message


def test_after_a_release_the_standby_fleet_is_not_counted(
    store: StateStore,
) -> None:
    # After a blue/green release: "green" serves all traffic, "blue" is the warm fleet kept for rollback.
    store.put_group("shop", "production", Group("green", "v1", 1, 100))
    (serving,) = store.list_instances("shop", "production")
    store.update_instance(serving.id, group_name="green")
    store.put_group("shop", "production", Group("blue", "v0", 2, 0, standby_until=2_000_000.0))
    for port in (2, 3):
        store.add_instance(
            "shop", "production", "v0", "b", "127.0.0.1", port, pid=os.getpid(), state="running",
            health="healthy", group_name="blue",
        )  # fmt: skip
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    clock.now += 1
    router.serve("green", 30)
    scaler.tick()
    # 30 req/s on the one green instance (not on three): 3 instances; the reconcile loop gives them to
    # green (tests/controlplane/test_cp_reconcile.py), the scaler touches no group.
    assert store.get_environment("shop", "production").desired_capacity == 3
    groups = {g.name: g for g in store.list_groups("shop", "production")}
    assert (groups["green"].capacity, groups["blue"].capacity) == (1, 2)
    assert "requests_per_instance 30/" in store.list_events("shop", "production", kind="scale")[-1].message


def test_an_operators_scale_in_is_not_bounced_back_by_the_instances_still_live(store: StateStore) -> None:
    store.set_desired_capacity("shop", "production", 4, "test")
    for port in (2, 3, 4):
        store.add_instance(
            "shop",
            "production",
            "v1",
            "b",
            "127.0.0.1",
            port,
            pid=os.getpid(),
            state="running",
            health="healthy",
        )
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    clock.now += 1
    router.serve("blue", 2)
    scaler.tick()
    # `sprout scale --desired 1` on a quiet site: the three surplus instances are still live until the
    # reconcile loop drains them, which must not read as a fleet of four to keep.
    store.set_desired_capacity("shop", "production", 1, "sprout scale by test")
    clock.now += 1
    router.serve("blue", 2)
    scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 1


def test_one_environments_error_is_an_event_on_it_and_the_others_keep_scaling(
    store: StateStore, tmp_path: Path
) -> None:
    # A manifest stored before `validate` refused steps without bounds: the scaler cannot read it.
    valid = parse_manifest({**MANIFEST, "app": {"name": "broken", "web": "python app.py"}})
    store.upsert_environment("broken", "production", valid, tmp_path)
    store.add_version("broken", "b" * 64, 1, valid)
    store.set_current_version("broken", "production", "v1")
    broken = valid.model_dump(mode="json")
    broken["scaling"]["step"] = [{"change": 1}]
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("UPDATE environments SET manifest_json = ? WHERE app = 'broken'", (json.dumps(broken),))
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    scaler.tick()
    for _ in range(3):
        clock.now += 1
        router.serve("blue", 30)
        scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 3
    (error,) = store.list_events(kind="scale.error")
    assert (error.app, error.env) == ("broken", "production")
    assert error.message == (
        "broken/production: scaling stopped for this environment: ManifestError: state of broken/production: "
        'scaling.step[0]: give "lower", "upper" or both (the metric interval this step applies to); '
        "fix its manifest and run `sprout up`"
    )


def test_a_reading_after_a_stall_of_the_router_is_discarded(store: StateStore) -> None:
    router, clock = Router(), Clock()
    scaler = make(store, router, clock)
    for _ in range(3):
        clock.now += 1
        router.serve("blue", 9)
        scaler.tick()
    # The router stalls for 5 s; its clients' requests queue and arrive at once when it resumes.
    clock.now += 6
    router.serve("blue", 1000)
    scaler.tick()
    clock.now += 1
    router.serve("blue", 1000)
    scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 1
    (stall,) = store.list_events("shop", "production", kind="scale.stall")
    assert stall.message == (
        "reading discarded: 6.0s since the previous reading: the metrics source stalled; readings resume in 2s"
    )
    for _ in range(2):
        clock.now += 1
        router.serve("blue", 30)
        scaler.tick()
    assert store.get_environment("shop", "production").desired_capacity == 3

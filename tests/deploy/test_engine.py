"""The release engine on an in-memory fleet: every strategy, aborts, canary analysis, locks, rollback, resume."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from sprout.deploy.engine import DONE, ReleaseEngine
from sprout.deploy.fleet import Group
from sprout.deploy.gate import GateResult
from sprout.errors import ConflictError, ServiceError
from sprout.spec import parse_manifest
from sprout.spec.models import Manifest
from sprout.state.models import Deployment
from sprout.state.store import StateStore

from .memory_fleet import MemoryFleet

APP, ENV = "shop", "production"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def manifest(strategy: str = "bluegreen", **deploy: object) -> Manifest:
    return parse_manifest(
        {
            "app": {"name": APP, "web": "python app.py"},
            "instances": {"min": 2, "max": 6},
            "deploy": {"strategy": strategy, "rollback_window": "10m", "health_timeout": "30s", **deploy},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    store.upsert_environment(APP, ENV, manifest(), tmp_path)
    for n in (1, 2):
        store.add_version(APP, f"{n:064x}", 1000, manifest())
    return store


def make_engine(store: StateStore, fleet: MemoryFleet, clock: Clock, m: Manifest) -> ReleaseEngine:
    return ReleaseEngine(store, fleet, lambda app, version: m, clock)


def drive(
    engine: ReleaseEngine,
    d: Deployment,
    clock: Clock,
    fleet: MemoryFleet,
    check: Callable[[], None] = lambda: None,
    limit: int = 400,
) -> Deployment:
    """Tick until done, one simulated second and 50 requests per tick, checking an invariant each tick."""
    for _ in range(limit):
        d = engine.tick(d.id)
        check()
        if d.state == DONE:
            return d
        clock.now += 1
        fleet.send(50)
    raise AssertionError(f"release stuck at {d.state}: {d.data.get('waiting')}")


def first_release(store: StateStore, fleet: MemoryFleet, clock: Clock, m: Manifest) -> None:
    engine = make_engine(store, fleet, clock, m)
    d = drive(engine, engine.start(APP, ENV, "v1", None, "alice"), clock, fleet)
    assert d.outcome == "succeeded"


@pytest.mark.parametrize(
    ("strategy", "min_serving", "max_capacity"),
    [
        ("bluegreen", 2, 4),
        ("immutable", 2, 4),
        ("rolling_with_batch", 2, 3),
        ("rolling", 1, 2),
        ("canary", 2, 4),
    ],
)
def test_strategy_replaces_version_without_losing_capacity(
    store: StateStore, strategy: str, min_serving: int, max_capacity: int
) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest(strategy, canary={"interval": "5s", "min_requests": 5})
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    seen: list[tuple[int, int]] = []

    def check() -> None:
        live = sum(g.capacity for g in fleet.state.values() if g.standby_until is None)
        seen.append((fleet.serving(), live))

    d = drive(engine, engine.start(APP, ENV, "v2", strategy, "alice"), clock, fleet, check)
    assert (d.outcome, d.reason) == ("succeeded", "v2 serves 100% of traffic")
    assert min(s for s, _ in seen) >= min_serving
    assert max(c for _, c in seen) <= max_capacity
    serving = {n: g for n, g in fleet.state.items() if g.weight > 0}
    assert [g.version for g in serving.values()] == ["v2"]
    assert sum(g.capacity for g in serving.values()) == 2
    assert store.get_environment(APP, ENV).current_version == "v2"
    assert fleet.releases == ["v1", "v2"]
    assert store.lock_holder(f"{APP}/{ENV}") is None
    kept = [g for g in fleet.state.values() if g.standby_until is not None]
    assert [g.version for g in kept] == (["v1"] if strategy in ("bluegreen", "canary") else [])


def test_canary_walks_its_weight_steps(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest("canary", canary={"interval": "5s", "min_requests": 1})
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    new_weights = [w["green"] for w in fleet.weight_log if "green" in w]
    assert [w for i, w in enumerate(new_weights) if i == 0 or w != new_weights[i - 1]] == [5, 25, 50, 100]


def test_bad_canary_rolls_back_automatically_with_its_reason(store: StateStore) -> None:
    clock, m = Clock(), manifest("canary", canary={"interval": "10s", "min_requests": 20})
    fleet = MemoryFleet(error_rate={"v2": 0.05})
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    d = drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    assert d.outcome == "rolled_back"
    assert re.fullmatch(
        r"canary analysis: canary 5xx rate [\d.]+% \(\d+/\d+\) vs stable 0\.0%: above the allowed \+1\.0%",
        d.reason or "",
    )
    assert {n: (g.version, g.weight) for n, g in fleet.state.items()} == {"blue": ("v1", 100)}
    assert max(w.get("green", 0) for w in fleet.weight_log) == 5
    assert "rolled_back" in store.list_history(APP, ENV)[-1].diff_text


def test_slow_canary_rolls_back_after_a_second_look(store: StateStore) -> None:
    clock, m = Clock(), manifest("canary", canary={"interval": "10s", "min_requests": 20})
    fleet = MemoryFleet(latency={"v2": 0.2})
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    d = drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    assert d.outcome == "rolled_back"
    assert re.fullmatch(
        r"canary analysis: canary p95 \d+ ms is [\d.]+x stable's \d+ ms: above the allowed 1\.5x",
        d.reason or "",
    )
    assert {n: (g.version, g.weight) for n, g in fleet.state.items()} == {"blue": ("v1", 100)}
    assert max(w.get("green", 0) for w in fleet.weight_log) == 5
    notes = [e.message for e in store.list_events(APP, ENV)]
    assert any("→ canary_analyze: second look after a slow interval: canary p95" in n for n in notes)


def test_one_slow_interval_is_not_a_regression(store: StateStore) -> None:
    clock, m = Clock(), manifest("canary", canary={"interval": "10s", "min_requests": 20})
    fleet = MemoryFleet()
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    started = clock.now

    def spike() -> None:
        # v2 is slow for its first analysis interval only, like one instance hit by a busy neighbour.
        fleet.latency["v2"] = 0.2 if clock.now - started < 10 else 0.01

    d = drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet, spike)
    assert (d.outcome, d.reason) == ("succeeded", "v2 serves 100% of traffic")
    notes = [e.message for e in store.list_events(APP, ENV)]
    assert any("second look after a slow interval" in n for n in notes)


def test_unhealthy_version_is_aborted_and_never_gets_traffic(store: StateStore) -> None:
    clock, m = Clock(), manifest("bluegreen")
    fleet = MemoryFleet(bad=frozenset({"v2"}))
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    d = drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    assert d.outcome == "aborted"
    assert d.reason == "new instances not healthy on / after 30s (0/2 healthy): GET / answered 500"
    assert all(w.get("green", 0) == 0 for w in fleet.weight_log)
    assert {n: g.version for n, g in fleet.state.items()} == {"blue": "v1"}
    assert store.get_environment(APP, ENV).current_version == "v1"


def test_failing_release_command_aborts_before_launch(store: StateStore) -> None:
    clock, m = Clock(), manifest("bluegreen")
    fleet = MemoryFleet()
    first_release(store, fleet, clock, m)
    fleet.failing_release.add("v2")
    engine = make_engine(store, fleet, clock, m)
    d = drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    assert (d.outcome, d.reason) == ("aborted", "release command failed: `python -m migrate` exited 1 for v2")
    assert set(fleet.state) == {"blue"}


def test_second_release_fails_fast_naming_the_holder(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest()
    engine = make_engine(store, fleet, clock, m)
    engine.start(APP, ENV, "v1", None, "alice")
    with pytest.raises(
        ConflictError,
        match=r"shop/production: another release is in progress \(held by alice: v1 \(bluegreen\)",
    ):
        engine.start(APP, ENV, "v2", None, "bob")


def test_a_lock_a_full_disk_kept_the_engine_from_freeing_is_freed_by_its_next_pass(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest()
    engine = make_engine(store, fleet, clock, m)
    full = sqlite3.OperationalError("database or disk is full")

    def on_a_full_disk(*args: object) -> NoReturn:
        raise full

    # The disk fills during the test gate: the gate fails, and so does the failure's release of the lock.
    monkeypatch.setattr(fleet, "test", on_a_full_disk)
    monkeypatch.setattr(store, "release_lock", on_a_full_disk)
    with pytest.raises(sqlite3.OperationalError):
        engine.start(APP, ENV, "v1", None, "alice")
    monkeypatch.undo()
    assert store.lock_holder(f"{APP}/{ENV}") is not None
    # Space is back: the daemon's next pass frees the lock no release holds, and says so.
    engine.tick_all()
    assert store.lock_holder(f"{APP}/{ENV}") is None
    (freed,) = store.list_events(APP, ENV, kind="release.lock_freed")
    assert freed.message.startswith("release lock of alice: v1 (bluegreen) since ")
    assert freed.message.endswith(": its release was never recorded (this control plane)")
    assert drive(engine, engine.start(APP, ENV, "v1", None, "bob"), clock, fleet).outcome == "succeeded"


def test_a_lock_held_through_a_test_gate_is_not_taken_for_an_orphan(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest()
    engine = make_engine(store, fleet, clock, m)
    freed_during_gate: list[object] = []

    def gate(app: str, env: str, version: str) -> GateResult:
        # The daemon's releases loop runs its pass while an API thread's release is in its test gate.
        freed_during_gate.extend(engine.free_orphan_locks())
        return GateResult(passed=True, seconds=0.0)

    fleet.test = gate  # type: ignore[method-assign]
    d = engine.start(APP, ENV, "v1", None, "alice")
    assert freed_during_gate == []
    assert store.lock_holder(f"{APP}/{ENV}") is not None
    assert drive(engine, d, clock, fleet).outcome == "succeeded"
    assert store.lock_holder(f"{APP}/{ENV}") is None


def test_a_rollback_that_cannot_be_instant_says_what_became_of_the_warm_fleet(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(bad=frozenset({"v3"})), manifest("bluegreen")
    store.add_version(APP, f"{3:064x}", 1000, manifest())
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    # v1 is warm; it is not the version asked for.
    assert engine.rollback(APP, ENV, "alice", to="v3").note == "the warm fleet holds v1, not v3"
    engine.rollback(APP, ENV, "alice")  # cancels that redeploy: back on v2, v1 still warm
    assert [g.version for g in fleet.state.values() if g.standby_until] == ["v1"]
    # A release of v3 launches in the warm fleet's colour, and fails: v1's warm fleet is gone all the same.
    failed = engine.start(APP, ENV, "v3", None, "alice")
    assert drive(engine, failed, clock, fleet).outcome == "aborted"
    launched = [e.message for e in store.list_events(APP, ENV, limit=1000) if "launch → " in e.message]
    assert launched[-1].endswith("; warm fleet blue (v1) replaced: a rollback to v1 is now a redeploy")
    result = engine.rollback(APP, ENV, "alice")
    assert (result.instant, result.version) == (False, "v1")
    assert re.fullmatch(
        rf"warm fleet blue \(v1\) was replaced at \d\d:\d\d:\d\d by release {failed.id} \(v3, aborted\), "
        "which launched in its colour",
        result.note,
    ), result.note


def test_instant_rollback_inside_the_window(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest("bluegreen")
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    result = engine.rollback(APP, ENV, "alice")
    assert (result.instant, result.version) == (True, "v1")
    assert {n: (g.version, g.weight) for n, g in fleet.state.items()} == {"blue": ("v1", 100)}
    assert store.get_environment(APP, ENV).current_version == "v1"
    assert store.list_history(APP, ENV)[-1].action == "rollback"


def test_the_release_loop_retires_the_warm_fleet_when_its_window_ends(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest("bluegreen")
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    clock.now = (fleet.state["blue"].standby_until or 0.0) - 1
    engine.run_pass()
    assert {n: (g.version, g.weight) for n, g in fleet.state.items()} == {
        "blue": ("v1", 0),
        "green": ("v2", 100),
    }
    clock.now += 1
    engine.run_pass()
    assert {n: (g.version, g.weight) for n, g in fleet.state.items()} == {"green": ("v2", 100)}
    [retired] = store.list_events(APP, ENV, kind="release.retire")
    assert retired.message == "rollback window over: warm fleet blue (v1, 2 instance(s)) retired"
    assert (retired.data["group"], retired.data["version"], retired.data["capacity"]) == ("blue", "v1", 2)


def test_rollback_after_the_window_redeploys_the_earlier_version(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest("bluegreen")
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    clock.now += 601
    assert engine.retire_expired(APP, ENV) == ["blue"]
    result = engine.rollback(APP, ENV, "alice")
    assert (result.instant, result.version) == (False, "v1")
    assert re.fullmatch(
        r"the rollback window has passed: warm fleet blue \(v1\) was retired at \d\d:\d\d:\d\d", result.note
    )
    assert result.deployment is not None
    d = drive(engine, result.deployment, clock, fleet)
    assert d.outcome == "succeeded"
    assert [g.version for g in fleet.state.values() if g.weight > 0] == ["v1"]


def test_a_release_applies_the_manifest_of_the_version_it_deploys(store: StateStore) -> None:
    clock, fleet = Clock(), MemoryFleet()
    changed = {
        **manifest().model_dump(mode="json"),
        "health": {"interval": "1s"},
        "instances": {"min": 3, "max": 6},
    }
    manifests = {"v1": manifest(), "v3": parse_manifest(changed)}
    store.add_version(APP, f"{3:064x}", 1000, manifests["v3"])
    engine = ReleaseEngine(store, fleet, lambda app, version: manifests[version], clock)
    drive(engine, engine.start(APP, ENV, "v1", None, "alice"), clock, fleet)
    d = drive(engine, engine.start(APP, ENV, "v3", None, "alice"), clock, fleet)
    env = store.get_environment(APP, ENV)
    assert (env.manifest_hash, env.desired_capacity) == (manifests["v3"].digest(), 3)
    assert d.data["manifest"] == manifests["v3"].digest()
    entry = store.list_history(APP, ENV)[-1]
    assert entry.manifest_hash == manifests["v3"].digest()
    assert entry.diff_text.splitlines()[1:] == [
        "~ health.interval: 2s → 1s",
        "~ instances.min: 2 → 3",
        "~ desired capacity: 2 → 3",
    ]
    # An instant rollback goes back to the warm fleet's version with its own manifest.
    engine.rollback(APP, ENV, "alice")
    env = store.get_environment(APP, ENV)
    assert (env.current_version, env.manifest_hash) == ("v1", manifests["v1"].digest())


def test_swap_switches_back_and_forth(store: StateStore) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest("bluegreen")
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    assert engine.swap(APP, ENV, "alice") == "v1"
    assert engine.swap(APP, ENV, "alice") == "v2"
    assert {g.version: g.weight for g in fleet.state.values()} == {"v1": 0, "v2": 100}


def test_rollback_cancels_a_stuck_release(store: StateStore) -> None:
    clock, m = Clock(), manifest("bluegreen", health_timeout="1h")
    fleet = MemoryFleet(bad=frozenset({"v2"}))
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    d = engine.start(APP, ENV, "v2", None, "alice")
    for _ in range(5):
        d = engine.tick(d.id)
    assert d.state == "wait_healthy"
    engine.rollback(APP, ENV, "bob")
    d = store.get_deployment(d.id)
    assert (d.state, d.outcome) == (DONE, "aborted")
    assert d.reason == "cancelled by bob's rollback at step wait_healthy"
    assert {g.version for g in fleet.state.values()} == {"v1"}
    assert store.lock_holder(f"{APP}/{ENV}") is None


@pytest.mark.parametrize("crash_after", range(1, 12))
def test_a_restarted_engine_resumes_from_any_step(store: StateStore, crash_after: int) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest("bluegreen")
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    d = engine.start(APP, ENV, "v2", None, "alice")
    for _ in range(crash_after):
        d = engine.tick(d.id)
        clock.now += 1
    restarted = make_engine(store, fleet, clock, m)
    resumed = restarted.tick_all()
    d = drive(restarted, resumed[0] if resumed else d, clock, fleet)
    assert d.outcome == "succeeded"
    assert [g.version for g in fleet.state.values() if g.weight > 0] == ["v2"]
    assert len(store.list_deployments(APP, ENV, unfinished=True)) == 0
    assert 0 < d.data["duration"] < 60


class FailingFleetFor(MemoryFleet):
    """A fleet whose groups cannot be read for one environment (its provider is failing)."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken = broken

    def groups(self, app: str, env: str) -> dict[str, Group]:
        if env == self.broken:
            raise ServiceError(f"{app}/{env}: provider unreachable")
        return super().groups(app, env)


def test_one_environment_failing_does_not_keep_another_warm_fleet(store: StateStore, tmp_path: Path) -> None:
    clock, fleet, m = Clock(), FailingFleetFor("staging"), manifest("bluegreen")
    store.upsert_environment(APP, "staging", m, tmp_path)
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    drive(engine, engine.start(APP, ENV, "v2", None, "alice"), clock, fleet)
    clock.now += 601
    engine.run_pass()
    engine.run_pass()
    assert {n: g.version for n, g in fleet.state.items()} == {"green": "v2"}
    [failed] = store.list_events(APP, "staging", kind="release.retire_failed")
    assert failed.message == (
        "retiring the expired warm fleet failed: ServiceError: shop/staging: provider unreachable; retrying"
    )


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
def test_a_release_command_run_in_the_background_holds_no_tick(store: StateStore, fails: bool) -> None:
    clock, fleet, m = Clock(), MemoryFleet(), manifest()
    first_release(store, fleet, clock, m)
    engine = make_engine(store, fleet, clock, m)
    woken = threading.Event()
    engine.run_release_phases_in_background(woken.set)
    proceed = threading.Event()
    ran = fleet.release

    def slow_release(app: str, env: str, version: str, stop: threading.Event | None = None) -> None:
        assert proceed.wait(10)
        if fails:
            raise ServiceError("`python -m migrate` exited 1")
        ran(app, env, version)

    fleet.release = slow_release  # type: ignore[method-assign]
    d = engine.start(APP, ENV, "v2", None, "alice")
    while d.state != "release":
        d = engine.tick(d.id)
    for _ in range(3):  # each tick returns at once while the command runs
        d = engine.tick(d.id)
        assert (d.state, d.data["waiting"]) == ("release", "release command running (0s)")
    proceed.set()
    assert woken.wait(10)  # the loop is nudged when the command ends
    d = drive(engine, d, clock, fleet)
    if fails:
        assert (d.outcome, d.reason) == ("aborted", "release command failed: `python -m migrate` exited 1")
    else:
        assert d.outcome == "succeeded" and fleet.releases[-1] == "v2"

"""The pipeline against a real state store: apply writes desired state and one history row; no-op writes nothing."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console

from sprout.errors import NotFoundError
from sprout.plan import ApplyExecutor, DisplayExecutor, apply_manifest, build_plan, run
from sprout.spec import parse_manifest
from sprout.state import StateStore

MANIFEST = '[app]\nname = "shop"\nweb = "run"\n'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.db")
    yield state
    state.close()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "sprout.toml").write_text(MANIFEST)
    return folder


def push(store: StateStore, sha: str) -> str:
    return store.add_version(
        "shop", sha * 64, 10, parse_manifest({"app": {"name": "shop", "web": "run"}})
    ).label


def test_first_apply_creates_the_environment_and_one_history_row(store: StateStore, app_dir: Path) -> None:
    push(store, "a")
    result = apply_manifest(store, app_dir, "production", None, "alice")
    assert result.changed and result.history_id is not None
    env = store.get_environment("shop", "production")
    assert env is not None
    assert (env.current_version, env.desired_capacity, env.app_dir) == ("v1", 2, app_dir.resolve())
    [entry] = store.list_history("shop", "production")
    assert (entry.id, entry.user, entry.action, entry.version) == (result.history_id, "alice", "create", "v1")
    assert entry.manifest_hash == env.manifest_hash
    assert (
        entry.diff_text
        == result.diff
        == (
            "+ environment shop/production\n+ version: v1\n+ instances in zone a: 0 → 1\n"
            "+ instances in zone b: 0 → 1\n+ routes: shop.localhost"
        )
    )
    assert [e.kind for e in store.list_events("shop", "production")] == ["env.created"]


def test_second_apply_with_the_fleet_running_changes_nothing(store: StateStore, app_dir: Path) -> None:
    push(store, "a")
    apply_manifest(store, app_dir, "production", "v1", "alice")
    for zone in ("a", "b"):
        store.add_instance("shop", "production", "v1", zone, "127.0.0.1", 0, state="running")
    before = store.get_environment("shop", "production")
    events = store.list_events()
    result = apply_manifest(store, app_dir, "production", "v1", "alice")
    assert not result.changed and result.history_id is None
    assert result.plan.is_empty
    assert result.diff.startswith("no changes: shop/production already matches shop's manifest")
    assert store.get_environment("shop", "production") == before
    assert len(store.list_history()) == 1
    assert store.list_events() == events


def test_changes_are_written_and_audited(store: StateStore, app_dir: Path) -> None:
    push(store, "a")
    apply_manifest(store, app_dir, "production", None, "alice")
    store.add_instance("shop", "production", "v1", "a", "127.0.0.1", 0, state="running")
    store.add_instance("shop", "production", "v1", "b", "127.0.0.1", 0, state="running")
    push(store, "b")
    (app_dir / "sprout.toml").write_text(MANIFEST + '[instances]\nmin = 4\n[health]\ninterval = "1s"\n')
    result = apply_manifest(store, app_dir, "production", "v2", "bob")
    env = store.get_environment("shop", "production")
    assert env is not None
    assert (env.current_version, env.desired_capacity, env.manifest.health.interval) == ("v2", 4, 1.0)
    assert result.plan.describe() == [
        "~ health.interval: 2s → 1s",
        "~ instances.min: 2 → 4",
        "~ version: v1 → v2",
        "+ instances in zone a: 1 → 2",
        "+ instances in zone b: 1 → 2",
    ]
    history = store.list_history("shop", "production")
    assert [(h.user, h.action, h.version) for h in history] == [
        ("alice", "create", "v1"),
        ("bob", "update", "v2"),
    ]
    assert history[-1].diff_text == result.diff
    [capacity] = store.list_events("shop", "production", kind="capacity")
    assert capacity.message == "desired capacity 2 → 4: applied by bob"


def test_without_a_label_the_running_version_is_kept(store: StateStore, app_dir: Path) -> None:
    push(store, "a")
    apply_manifest(store, app_dir, "production", None, "alice")
    push(store, "b")
    assert not any("version" in line for line in build_plan(store, app_dir, "production").describe())
    assert "~ version: v1 → v2" in build_plan(store, app_dir, "production", "v2").describe()
    with pytest.raises(NotFoundError, match=r"shop v9: no such version"):
        build_plan(store, app_dir, "production", "v9")


def test_display_executor_writes_nothing(store: StateStore, app_dir: Path) -> None:
    push(store, "a")
    out = io.StringIO()
    result = run(
        store, app_dir, "staging", None, DisplayExecutor(Console(file=out, width=200, color_system=None))
    )
    assert result.history_id is None
    assert store.get_environment("shop", "staging") is None
    assert store.list_history() == []
    assert out.getvalue().splitlines() == [
        "shop/staging: 5 changes",
        "  + environment shop/staging",
        "  + version: v1",
        "  + instances in zone a: 0 → 1",
        "  + instances in zone b: 0 → 1",
        "  + routes: staging.shop.localhost",
        "  (database: SQLite file database.sqlite3 of this environment, created on first use)",
        "  (sessions: SQLite file sessions.sqlite3 of this environment, created on first use)",
    ]


def test_apply_executor_rejects_unknown_actions(store: StateStore, app_dir: Path) -> None:
    from dataclasses import dataclass, replace

    @dataclass(frozen=True)
    class Teleport:
        def describe(self) -> str:
            return "+ teleport"

    the_plan = build_plan(store, app_dir, "production")
    odd = replace(the_plan, actions=(Teleport(),))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ApplyExecutor cannot apply Teleport"):
        ApplyExecutor(store, "alice").execute(odd)
    assert store.get_environment("shop", "production") is None


def test_managed_resources_are_recorded_as_wanted(store: StateStore, app_dir: Path) -> None:
    (app_dir / "sprout.toml").write_text(MANIFEST + '\n[resources.sessions]\nengine = "memcached"\n')
    push(store, "c")
    apply_manifest(store, app_dir, "production", None, "alice")
    wanted = store.list_events("shop", "production", kind="resource.wanted")
    assert [(e.message, e.data) for e in wanted] == [
        ("+ memcached node in zone a", {"resource": "memcached", "zone": "a"}),
        ("+ memcached node in zone b", {"resource": "memcached", "zone": "b"}),
    ]


def test_an_apply_that_changes_no_desired_state_writes_no_history(store: StateStore, app_dir: Path) -> None:
    push(store, "a")
    apply_manifest(store, app_dir, "production", "v1", "alice")
    # One instance is up, its sibling is still being launched by the reconcile loop: `plan` shows the
    # difference, but applying it would record nothing new.
    store.add_instance("shop", "production", "v1", "a", "127.0.0.1", 0, state="running")
    result = apply_manifest(store, app_dir, "production", "v1", "alice")
    assert result.plan.describe() == ["+ instances in zone b: 0 → 1"]
    assert not result.changed and result.history_id is None
    assert len(store.list_history()) == 1


def test_concurrent_applies_of_one_change_write_one_history_row(tmp_path: Path, app_dir: Path) -> None:
    setup = StateStore(tmp_path / "state.db")
    push(setup, "a")
    apply_manifest(setup, app_dir, "production", "v1", "alice")
    stores = [StateStore(tmp_path / "state.db") for _ in range(4)]
    try:
        for interval in range(3, 9):
            (app_dir / "sprout.toml").write_text(MANIFEST + f'[health]\ninterval = "{interval}s"\n')
            barrier = threading.Barrier(len(stores))

            def apply(store: StateStore, barrier: threading.Barrier = barrier) -> bool:
                barrier.wait()
                return apply_manifest(store, app_dir, "production", "v1", "bob").changed

            with ThreadPoolExecutor(len(stores)) as pool:
                changed = list(pool.map(apply, stores))
            assert changed.count(True) == 1, (interval, changed)
        history = setup.list_history("shop", "production")
        assert [h.action for h in history] == ["create"] + ["update"] * 6
    finally:
        for store in stores:
            store.close()
        setup.close()

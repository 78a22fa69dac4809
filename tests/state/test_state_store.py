"""The state store: environments, versions, instances, deployments, locks, events, history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sprout.errors import NotFoundError
from sprout.spec import Manifest, parse_manifest
from sprout.state import StateStore, new_instance_id
from sprout.state.schema import MIGRATIONS


def test_new_database_is_wal_and_migrated(store: StateStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        conn.close()
    assert store.schema_version == len(MIGRATIONS)


def test_reopening_keeps_data_and_schema(home: Path, manifest: Manifest) -> None:
    first = StateStore(home / "state.db")
    first.add_version("microsite", "a" * 64, 10, manifest)
    first.close()
    second = StateStore(home / "state.db")
    try:
        assert [v.label for v in second.list_versions("microsite")] == ["v1"]
    finally:
        second.close()


def test_environment_created_at_initial_capacity(
    store: StateStore, manifest: Manifest, tmp_path: Path
) -> None:
    env = store.upsert_environment("microsite", "production", manifest, tmp_path)
    assert env.id == "microsite/production"
    assert (env.desired_capacity, env.status, env.current_version) == (2, "created", None)
    assert env.manifest == manifest
    assert env.manifest_hash == manifest.digest()
    assert env.app_dir == tmp_path.resolve()
    assert store.get_environment("microsite", "production") == env
    assert store.get_environment("microsite", "staging") is None
    assert store.list_apps() == ["microsite"]


def test_upsert_replaces_manifest_but_keeps_capacity_and_version(
    store: StateStore, manifest: Manifest, tmp_path: Path
) -> None:
    store.upsert_environment("microsite", "production", manifest, tmp_path)
    store.add_version("microsite", "a" * 64, 10, manifest)
    store.set_current_version("microsite", "production", "v1")
    store.set_desired_capacity("microsite", "production", 5, "scale out")
    changed = manifest.model_copy(update={"instances": manifest.instances.model_copy(update={"min": 3})})
    env = store.upsert_environment("microsite", "production", changed, tmp_path)
    assert env.manifest.instances.min == 3
    assert (env.desired_capacity, env.current_version) == (5, "v1")
    assert env.manifest_hash == changed.digest() != manifest.digest()


def test_capacity_change_is_an_event(store: StateStore, manifest: Manifest, tmp_path: Path) -> None:
    store.upsert_environment("microsite", "production", manifest, tmp_path)
    store.set_desired_capacity("microsite", "production", 4, "scheduled warm-up")
    store.set_desired_capacity("microsite", "production", 4, "no change, no event")
    [event] = store.list_events("microsite", "production", kind="capacity")
    assert event.message == "desired capacity 2 → 4: scheduled warm-up"
    assert event.data == {"old": 2, "new": 4}


def test_unknown_environment_and_version_are_not_found(
    store: StateStore, manifest: Manifest, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match=r"microsite/production: no such environment"):
        store.set_desired_capacity("microsite", "production", 1, "x")
    store.upsert_environment("microsite", "production", manifest, tmp_path)
    with pytest.raises(NotFoundError, match=r"microsite v9: no such version"):
        store.set_current_version("microsite", "production", "v9")


def test_delete_environment(store: StateStore, manifest: Manifest, tmp_path: Path) -> None:
    store.upsert_environment("microsite", "production", manifest, tmp_path)
    store.upsert_environment("microsite", "staging", manifest, tmp_path)
    store.delete_environment("microsite", "staging")
    assert [e.id for e in store.list_environments()] == ["microsite/production"]


def test_versions_are_labelled_per_app_and_reused_for_identical_content(
    store: StateStore, manifest: Manifest
) -> None:
    v1 = store.add_version("microsite", "a" * 64, 100, manifest, store_url="file:///x")
    v2 = store.add_version("microsite", "b" * 64, 200, manifest)
    again = store.add_version("microsite", "a" * 64, 100, manifest)
    other = store.add_version("lottery", "a" * 64, 100, manifest)
    assert (v1.label, v2.label, again.label, other.label) == ("v1", "v2", "v1", "v1")
    assert again == v1
    assert v1.store_url == "file:///x"
    assert v2.number == 2
    assert store.version_by_sha("microsite", "b" * 64) == v2
    assert store.get_version("microsite", "v2") == v2
    assert store.get_version("microsite", "v3") is None
    assert store.latest_version("microsite") == v2
    assert [v.label for v in store.list_versions("microsite")] == ["v1", "v2"]
    assert v1.manifest == manifest


def test_instances_lifecycle(store: StateStore) -> None:
    a = store.add_instance("microsite", "production", "v1", "a", "127.0.0.1", 41001, pid=123)
    b = store.add_instance(
        "microsite", "production", "v1", "b", "127.0.0.1", 41002, instance_id="i-00000000ff"
    )
    store.add_instance("lottery", "production", "v1", "a", "127.0.0.1", 41003)
    assert a.id.startswith("i-") and len(a.id) == 12
    assert (a.state, a.health, a.address) == ("launching", "unknown", "127.0.0.1:41001")
    running = store.update_instance(a.id, state="running", health="healthy", started_at=1.5)
    assert (running.state, running.health, running.pid, running.started_at) == (
        "running",
        "healthy",
        123,
        1.5,
    )
    assert store.get_instance(a.id) == running
    assert [i.id for i in store.list_instances("microsite", "production")] == [a.id, b.id]
    assert [i.id for i in store.list_instances(states=["running"])] == [a.id]
    assert len(store.list_instances()) == 3
    assert store.get_instance("i-missing") is None


def test_instance_values_are_checked(store: StateStore) -> None:
    with pytest.raises(ValueError, match="instance state 'sleeping' is not one of"):
        store.add_instance("microsite", "production", "v1", "a", "127.0.0.1", 1, state="sleeping")  # type: ignore[arg-type]
    inst = store.add_instance("microsite", "production", "v1", "a", "127.0.0.1", 1)
    with pytest.raises(ValueError, match="instance health 'meh' is not one of"):
        store.update_instance(inst.id, health="meh")
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        store.update_instance(inst.id, colour="blue")
    with pytest.raises(NotFoundError):
        store.update_instance("i-0000000000", state="stopped")


def test_instance_ids_are_unique() -> None:
    ids = {new_instance_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 12 and i.startswith("i-") for i in ids)


def test_deployments(store: StateStore) -> None:
    d = store.create_deployment("microsite", "production", "v2", "bluegreen", "alice", data={"blue": "v1"})
    assert (d.state, d.step, d.finished_at, d.data) == ("pending", 0, None, {"blue": "v1"})
    d = store.update_deployment(d.id, state="shifting", step=2, data={"blue": "v1", "green": "v2"})
    assert (d.state, d.step, d.data["green"]) == ("shifting", 2, "v2")
    assert store.list_deployments("microsite", "production", unfinished=True) == [d]
    done = store.update_deployment(d.id, state="done", finished_at=10.0, outcome="succeeded")
    assert store.list_deployments(unfinished=True) == []
    assert store.list_deployments("microsite") == [done]
    with pytest.raises(NotFoundError):
        store.get_deployment(999)


def test_locks_are_exclusive_and_reentrant(store: StateStore) -> None:
    assert store.acquire_lock("microsite/production", "deploy-1")
    assert store.acquire_lock("microsite/production", "deploy-1")
    assert not store.acquire_lock("microsite/production", "deploy-2")
    assert store.lock_holder("microsite/production") == "deploy-1"
    assert not store.release_lock("microsite/production", "deploy-2")
    assert store.release_lock("microsite/production", "deploy-1")
    assert store.lock_holder("microsite/production") is None
    assert store.acquire_lock("microsite/production", "deploy-2")


def test_events_filter_and_limit(store: StateStore) -> None:
    for n in range(5):
        store.record_event("microsite", "production", "launch", f"launched {n}", instance=f"i-{n}")
    store.record_event("lottery", "production", "launch", "other app")
    events = store.list_events("microsite", "production", limit=3)
    assert [e.message for e in events] == ["launched 2", "launched 3", "launched 4"]
    assert events[0].data == {"instance": "i-2"}
    assert len(store.list_events(since=events[-1].time)) >= 1
    assert len(store.list_events()) == 6


def test_history_is_append_only(store: StateStore) -> None:
    entry = store.append_history(
        user="alice",
        app="microsite",
        env="production",
        action="apply",
        manifest_hash="f" * 64,
        version="v1",
        diff_text="+ environment microsite/production",
    )
    assert store.list_history("microsite", "production") == [entry]
    assert store.list_history(env="staging") == []
    conn = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="history is append-only: rows cannot be changed"):
            conn.execute("UPDATE history SET user = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="history is append-only: rows cannot be deleted"):
            conn.execute("DELETE FROM history")
    finally:
        conn.close()
    assert store.list_history() == [entry]


def test_secret_values_never_reach_the_database(
    store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-5ecret-value-0b1d"
    monkeypatch.setenv("STRIPE_KEY", canary)
    secret_file = tmp_path / "db.pass"
    secret_file.write_text(canary)
    manifest = parse_manifest(
        {
            "app": {"name": "microsite", "web": "run"},
            "secrets": {"STRIPE_KEY": "env:STRIPE_KEY", "DB_PASS": {"file": "db.pass"}},
        }
    )
    store.upsert_environment("microsite", "production", manifest, tmp_path)
    store.add_version("microsite", "a" * 64, 1, manifest)
    store.close()
    for path in store.path.parent.glob("state.db*"):
        assert canary.encode() not in path.read_bytes()
    # The reference is kept (closing checkpoints the WAL into the main file).
    assert b"STRIPE_KEY" in store.path.read_bytes()

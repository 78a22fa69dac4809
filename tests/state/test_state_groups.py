"""Target groups (an environment's desired fleets) and instance stop times in the state store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sprout.errors import UserError
from sprout.spec import parse_manifest
from sprout.state import StateStore
from sprout.state.models import Group
from sprout.state.schema import MIGRATIONS

MANIFEST = parse_manifest({"app": {"name": "shop", "web": "python app.py"}})


def test_groups_are_created_replaced_listed_and_deleted(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.put_group("shop", "production", Group("blue", "v1", 2, 100))
    store.put_group("shop", "production", Group("green", "v2", 2, 0, standby_until=123.0))
    store.put_group("shop", "staging", Group("blue", "v1", 1, 100))
    store.put_group("shop", "production", Group("blue", "v1", 3, 100))
    assert store.list_groups("shop", "production") == [
        Group("blue", "v1", 3, 100),
        Group("green", "v2", 2, 0, 123.0),
    ]
    store.delete_group("shop", "production", "green")
    assert [g.name for g in store.list_groups("shop", "production")] == ["blue"]
    with pytest.raises(UserError, match="shop/production group blue: capacity and weight cannot be negative"):
        store.put_group("shop", "production", Group("blue", "v1", -1, 100))


def test_deleting_an_environment_forgets_its_groups(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.upsert_environment("shop", "production", MANIFEST, tmp_path)
    store.put_group("shop", "production", Group("blue", "v1", 2, 100))
    store.delete_environment("shop", "production")
    assert store.list_groups("shop", "production") == []


def test_an_instance_stop_time_is_set_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    instance = store.add_instance("shop", "production", "v1", "a", "127.0.0.1", 9000)
    assert instance.stopped_at is None
    stopped = store.update_instance(instance.id, state="stopped")
    assert stopped.stopped_at is not None
    again = store.update_instance(instance.id, state="failed")
    assert again.stopped_at == stopped.stopped_at


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO instances (id, app, env, version, zone, host, port, state, health, created_at, updated_at)"
        " VALUES ('i-0000000001', 'shop', 'production', 'v1', 'a', '127.0.0.1', 9000, 'running', 'healthy', 1, 1)"
    )
    conn.commit()
    conn.close()
    store = StateStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.get_instance("i-0000000001").stopped_at is None
    assert store.list_groups("shop", "production") == []

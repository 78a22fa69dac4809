"""The router's default route in the state store: taken by the first environment, kept, moved on request."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sprout.errors import NotFoundError
from sprout.spec import Manifest
from sprout.state import StateStore
from sprout.state.schema import MIGRATIONS


def _default(store: StateStore) -> list[str]:
    return [e.id for e in store.list_environments() if e.default_route]


def test_first_environment_keeps_it_until_moved(
    store: StateStore, manifest: Manifest, tmp_path: Path
) -> None:
    store.upsert_environment("microsite", "production", manifest, tmp_path)
    store.upsert_environment("microsite", "staging", manifest, tmp_path)
    store.upsert_environment("shop", "production", manifest, tmp_path)
    assert _default(store) == ["microsite/production"]
    store.set_default_route("shop", "production")
    store.upsert_environment("microsite", "production", manifest, tmp_path)
    assert _default(store) == ["shop/production"]
    with pytest.raises(NotFoundError):
        store.set_default_route("shop", "nowhere")
    assert _default(store) == ["shop/production"]
    # Its environment gone, nobody has it until the next environment is applied.
    store.delete_environment("shop", "production")
    assert _default(store) == []
    store.upsert_environment("microsite", "staging", manifest, tmp_path)
    assert _default(store) == ["microsite/staging"]


def test_a_store_from_before_keeps_its_newest_environment_as_default(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:4]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 4")
    for name, created in (("old", 1.0), ("new", 2.0)):
        conn.execute(
            "INSERT INTO environments (id, app, name, manifest_json, manifest_hash, app_dir, desired_capacity,"
            " status, created_at, updated_at) VALUES (?, 'shop', ?, '{}', 'h', '/tmp', 1, 'created', ?, ?)",
            (f"shop/{name}", name, created, created),
        )
    conn.commit()
    conn.close()
    store = StateStore(path)
    assert [r["id"] for r in store._read("SELECT id FROM environments WHERE default_route = 1")] == [
        "shop/new"
    ]
    store.close()

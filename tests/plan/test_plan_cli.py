"""`sprout plan` and `sprout history` as real processes, reading the state store without a daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sprout.plan import apply_manifest
from sprout.state import StateStore


def sprout(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home), "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_app(tmp_path: Path) -> Path:
    app = tmp_path / "shop"
    app.mkdir()
    (app / "sprout.toml").write_text('[app]\nname = "shop"\nweb = "run"\n')
    (app / "app.py").write_text("print('shop')\n")
    return app


def test_plan_for_a_new_environment_shows_the_unpushed_folder(tmp_path: Path) -> None:
    home, app = tmp_path / "home", make_app(tmp_path)
    done = sprout("plan", str(app), home=home)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("v1 = this folder's content (sha256 ")
    assert lines[0].endswith("not pushed yet; `sprout up` pushes it")
    assert lines[1:] == [
        "shop/production: 5 changes",
        "  + environment shop/production",
        "  + version: v1",
        "  + instances in zone a: 0 → 1",
        "  + instances in zone b: 0 → 1",
        "  + routes: shop.localhost",
        "  (database: SQLite file database.sqlite3 of this environment, created on first use)",
        "  (sessions: SQLite file sessions.sqlite3 of this environment, created on first use)",
    ]
    state = StateStore(home / "state.db")
    try:
        assert state.list_environments() == [] and state.list_versions("shop") == []
    finally:
        state.close()


def test_plan_of_another_environment_shows_the_host_names_it_will_answer(tmp_path: Path) -> None:
    home, app = tmp_path / "home", make_app(tmp_path)
    done = sprout("plan", str(app), "--env", "staging", home=home)
    assert done.returncode == 0, done.stderr
    assert "  + routes: staging.shop.localhost" in done.stdout.splitlines(), done.stdout


def test_plan_after_apply_says_no_changes_then_shows_edits(tmp_path: Path) -> None:
    home, app = tmp_path / "home", make_app(tmp_path)
    assert sprout("push", str(app), home=home).returncode == 0
    state = StateStore(home / "state.db")
    try:
        apply_manifest(state, app, "staging", "v1", "alice")
        for zone in ("a", "b"):
            state.add_instance("shop", "staging", "v1", zone, "127.0.0.1", 0, state="running")
    finally:
        state.close()
    same = sprout("plan", str(app), "--env", "staging", home=home)
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith("no changes: shop/staging already matches shop's manifest (manifest ")
    (app / "sprout.toml").write_text('[app]\nname = "shop"\nweb = "run"\n[health]\npath = "/healthz"\n')
    edited = sprout("plan", str(app), "-e", "staging", "--version", "v1", home=home)
    assert edited.stdout.splitlines() == ["shop/staging: 1 change", '  ~ health.path: "/" → "/healthz"']
    missing = sprout("plan", str(app), "--version", "v7", home=home)
    assert missing.returncode == 2
    assert "shop v7: no such version" in missing.stderr


def test_history_table_and_json(tmp_path: Path) -> None:
    home, app = tmp_path / "home", make_app(tmp_path)
    empty = sprout("history", str(app), home=home)
    assert empty.stdout == "no history for shop yet (`sprout up` records every applied change)\n"
    assert sprout("push", str(app), home=home).returncode == 0
    state = StateStore(home / "state.db")
    try:
        apply_manifest(state, app, "production", "v1", "alice")
        (app / "sprout.toml").write_text('[app]\nname = "shop"\nweb = "run"\n[instances]\nmin = 3\n')
        apply_manifest(state, app, "staging", "v1", "bob")
    finally:
        state.close()
    table = sprout("history", str(app), home=home)
    assert table.returncode == 0, table.stderr
    assert "history of shop" in table.stdout
    rows = [line.split() for line in table.stdout.splitlines() if "alice" in line or "bob" in line]
    assert [row[2:6] for row in rows] == [
        ["alice", "production", "create", "v1"],
        ["bob", "staging", "create", "v1"],
    ]
    assert "+ environment shop/production (+4 more)" in table.stdout
    entries = json.loads(sprout("history", str(app), "--env", "staging", "--json", home=home).stdout)
    assert [(e["user"], e["env"], e["action"], e["version"]) for e in entries] == [
        ("bob", "staging", "create", "v1")
    ]
    assert entries[0]["diff_text"].splitlines()[2:] == [
        "+ instances in zone a: 0 → 2",
        "+ instances in zone b: 0 → 1",
        "+ routes: staging.shop.localhost",
    ]
    assert entries[0]["time"].endswith("Z") and len(entries[0]["manifest_hash"]) == 64

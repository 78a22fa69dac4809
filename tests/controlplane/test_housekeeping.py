"""Housekeeping over a real home: SQLite stores, instance folders, a bootstrap cache and an artifact store."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopback import free_port
from sprout.bundle.store import FolderStore
from sprout.controlplane.housekeeping import (
    DAY,
    DEFAULT_RETENTION_DAYS,
    HOUSEKEEPING_FIRST_DELAY,
    Housekeeper,
    Removed,
    expired_instances,
    prunable_cache_entries,
    retained_shas,
    retention_cutoffs,
)
from sprout.controlplane.lifecycle import start_daemon
from sprout.logs.record import LogRecord, format_line
from sprout.logs.store import LogStore
from sprout.loops import Loop
from sprout.paths import Home
from sprout.spec import Manifest, parse_manifest
from sprout.state import Instance, StateStore, Version

HOUR = 3600.0


def manifest(retention_days: int = 14) -> Manifest:
    return parse_manifest({"app": {"name": "shop", "web": "run"}, "logs": {"retention_days": retention_days}})


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture
def store(home: Home) -> Iterator[StateStore]:
    state = StateStore(home.state_db)
    yield state
    state.close()


@pytest.fixture
def log_store(home: Home) -> Iterator[LogStore]:
    logs = LogStore(home.log_db)
    yield logs
    logs.close()


def housekeeper(
    home: Home, store: StateStore, log_store: LogStore, later: float = 0.0, cache_grace: float = 0.0
) -> Housekeeper:
    return Housekeeper(home, store, log_store, cache_grace=cache_grace, clock=lambda: time.time() + later)


def events(store: StateStore) -> list[str]:
    return [e.message for e in store.list_events() if e.kind == "housekeeping"]


# -- pure rules ------------------------------------------------------------------------------------


def test_retention_cutoffs_per_env_and_the_longest_for_the_rest() -> None:
    per_env, rest = retention_cutoffs({("shop", "prod"): 1, ("shop", "staging"): 30}, now=100 * DAY)
    assert per_env == {("shop", "prod"): 99 * DAY, ("shop", "staging"): 70 * DAY}
    assert rest == 70 * DAY
    assert retention_cutoffs({}, now=100 * DAY) == ({}, (100 - DEFAULT_RETENTION_DAYS) * DAY)


def instance(state: str, stopped_at: float | None, updated_at: float = 0.0) -> Instance:
    return Instance(
        f"i-{state}-{stopped_at}", "shop", "prod", "v1", "a", "127.0.0.1", 1, None, None,
        state, "unknown", None, 0.0, updated_at, stopped_at,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "stopped_at", "updated_at", "expired"),
    [
        ("stopped", 1000.0, 1000.0, True),
        ("failed", 1000.0, 1000.0, True),
        ("stopped", 5000.0, 5000.0, False),  # stopped within the grace period
        ("stopped", None, 1000.0, True),  # a row from before stopped_at: its last update
        ("running", None, 0.0, False),
        ("launching", None, 0.0, False),
        ("draining", None, 0.0, False),
    ],
)
def test_expired_instances(state: str, stopped_at: float | None, updated_at: float, expired: bool) -> None:
    found = expired_instances([instance(state, stopped_at, updated_at)], now=5000.0, grace=HOUR)
    assert bool(found) is expired


def version(number: int) -> Version:
    return Version("shop", f"v{number}", sha(number), 1, "{}", None, float(number))


def test_retained_shas_keep_in_use_and_the_newest() -> None:
    versions = {"shop": [version(n) for n in range(1, 9)], "blog": [version(20)]}
    kept = retained_shas(versions, {"shop": {"v1"}}, keep=5)
    assert kept == {sha(n) for n in (1, 4, 5, 6, 7, 8, 20)}
    assert retained_shas(versions, {}, keep=0) == set()


def test_prunable_cache_entries_are_hashes_only() -> None:
    names = [sha(1), f"{sha(1)}.lock", f"{sha(2)}.lock", sha(3), "deps", ".trash-x", "notes.txt"]
    assert prunable_cache_entries(names, retained={sha(3)}) == sorted([sha(1), sha(2)])


def test_removed_message_says_what_and_how_much() -> None:
    assert not Removed()
    removed = Removed(log_lines=1, cache_dirs=2, cache_bytes=210_000_000, bundles=1, bundle_bytes=50_000)
    assert removed.message() == "removed 1 log line, 2 cached versions (210.0 MB), 1 bundle (0.1 MB)"


# -- logs ------------------------------------------------------------------------------------------


def line(msg: str, ts: float, app: str = "shop", env: str = "prod") -> str:
    return format_line(LogRecord(ts, "stdout", "i-aaa", app, env, "v1", "a", msg))  # type: ignore[arg-type]


def test_log_lines_go_after_their_environments_retention(
    home: Home, store: StateStore, log_store: LogStore, tmp_path: Path
) -> None:
    store.upsert_environment("shop", "prod", manifest(retention_days=1), tmp_path)
    store.upsert_environment("shop", "staging", manifest(retention_days=30), tmp_path)
    now = time.time()
    log = tmp_path / "app.log"
    log.write_text(
        line("prod old", now - 2 * DAY)
        + line("prod new", now - HOUR)
        + line("staging old", now - 2 * DAY, env="staging")
        + line("gone env 20 days", now - 20 * DAY, env="gone")
        + line("gone env 40 days", now - 40 * DAY, env="gone")
    )
    assert log_store.ingest_file(log, "instance") == 5

    removed = housekeeper(home, store, log_store).run()

    assert removed == Removed(log_lines=2)
    assert sorted(r.msg for r in log_store.query()) == ["gone env 20 days", "prod new", "staging old"]
    assert log_store.query(grep="prod old") == []
    assert log_store.ingest_file(log, "instance") == 0, "offsets untouched: nothing comes back"
    assert events(store) == ["removed 2 log lines"]


# -- instance folders ------------------------------------------------------------------------------


def launched(home: Home, store: StateStore, state: str) -> Instance:
    found = store.add_instance("shop", "prod", "v1", "a", "127.0.0.1", 1)
    folder = home.instance_dir(found.id)
    folder.mkdir()
    (folder / "app.log").write_text("x" * 1000)
    return store.update_instance(found.id, state=state) if state != "launching" else found


def test_instance_folders_of_long_stopped_instances_go_live_and_recent_ones_stay(
    home: Home, store: StateStore, log_store: LogStore
) -> None:
    live = {state: launched(home, store, state) for state in ("launching", "running", "draining")}
    stopped = launched(home, store, "stopped")
    failed = launched(home, store, "failed")

    assert housekeeper(home, store, log_store).run() == Removed(), "just stopped: kept for a post-mortem"
    assert events(store) == [], "nothing removed, nothing recorded"

    removed = housekeeper(home, store, log_store, later=2 * HOUR).run()

    assert removed == Removed(instance_dirs=2, instance_bytes=2000)
    assert not home.instance_dir(stopped.id).exists() and not home.instance_dir(failed.id).exists()
    assert all(home.instance_dir(i.id).is_dir() for i in live.values())
    # The rows stay: the bill reads every instance's lifetime.
    assert {i.id for i in store.list_instances()} == {stopped.id, failed.id, *(i.id for i in live.values())}
    assert events(store) == ["removed 2 instance folders (0.0 MB)"]


# -- bootstrap cache -------------------------------------------------------------------------------


def cached_version(cache: Path, digest: str, layer: str | None = None) -> None:
    root = cache / digest
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text("x" * 100)
    if layer is None:
        (root / "venv").mkdir()
        (root / "venv" / "python").write_text("y" * 100)
    else:
        (root / "venv").symlink_to(os.path.join("..", "deps", layer, "venv"), target_is_directory=True)
    (root / ".ready").write_text("{}")
    (cache / f"{digest}.lock").touch()


def deps_layer(cache: Path, key: str) -> None:
    (cache / "deps" / key / "venv").mkdir(parents=True)
    (cache / "deps" / key / "venv" / "lib.py").write_text("z" * 500)
    (cache / "deps" / key / ".ready").write_text("{}")
    (cache / "deps" / f"{key}.lock").touch()


def push(store: StateStore, number: int) -> Version:
    return store.add_version("shop", sha(number), 1, manifest())


def test_cache_keeps_live_and_newest_versions_skips_a_bootstrap_and_prunes_unlinked_layers(
    home: Home, store: StateStore, log_store: LogStore
) -> None:
    cache = home.cache
    for number in range(1, 9):
        push(store, number)
    deps_layer(cache, "k-old")
    deps_layer(cache, "k-new")
    deps_layer(cache, "k-orphan")
    cached_version(cache, sha(1))
    cached_version(cache, sha(2))
    cached_version(cache, sha(3), layer="k-old")
    for number in range(4, 9):
        cached_version(cache, sha(number), layer="k-new")
    (cache / f"{sha(99)}.lock").touch()  # a lock file left by a version this store never knew
    live = store.add_instance("shop", "prod", "v1", "a", "127.0.0.1", 1)
    store.update_instance(live.id, state="running")

    # A bootstrap of v2 is in progress: it holds the bundle's lock.
    with open(cache / f"{sha(2)}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        first = housekeeper(home, store, log_store).run()

    assert first == Removed(cache_dirs=1, cache_bytes=100, deps_dirs=2, deps_bytes=1000)
    assert not (cache / sha(3)).exists() and not (cache / f"{sha(3)}.lock").exists()
    assert not (cache / f"{sha(99)}.lock").exists()
    assert (cache / sha(2) / ".ready").exists(), "a folder being bootstrapped is never touched"
    assert sorted(p.name for p in (cache / "deps").iterdir()) == ["k-new", "k-new.lock"]
    assert (cache / sha(8) / "venv" / "lib.py").read_text() == "z" * 500, "the linked layer still resolves"

    second = housekeeper(home, store, log_store).run()

    assert second == Removed(cache_dirs=1, cache_bytes=200)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        ["deps", *(sha(n) for n in (1, 4, 5, 6, 7, 8)), *(f"{sha(n)}.lock" for n in (1, 4, 5, 6, 7, 8))]
    )
    assert housekeeper(home, store, log_store).run() == Removed(), "nothing left to do"


def test_a_layer_linked_only_by_a_versions_deps_link_is_kept(
    home: Home, store: StateStore, log_store: LogStore
) -> None:
    # A version of a non-Python app (`python = false`) has no venv: its `deps` link alone keeps its layer.
    cache = home.cache
    push(store, 1)
    deps_layer(cache, "k-php")
    deps_layer(cache, "k-orphan")
    cached_version(cache, sha(1))
    shutil.rmtree(cache / sha(1) / "venv")
    (cache / sha(1) / "deps").symlink_to(os.path.join("..", "deps", "k-php"), target_is_directory=True)

    assert housekeeper(home, store, log_store).run() == Removed(deps_dirs=1, deps_bytes=500)
    assert sorted(p.name for p in (cache / "deps").iterdir()) == ["k-php", "k-php.lock"]


def test_a_cache_folder_started_from_recently_stays_though_nothing_records_it(
    home: Home, store: StateStore, log_store: LogStore
) -> None:
    cache = home.cache
    for number in range(1, 9):
        push(store, number)
    cached_version(cache, sha(1))
    cached_version(cache, sha(2))
    # v1 was last started from two hours ago; v2 a minute ago (a test gate of an old version, say).
    old = time.time() - 2 * HOUR
    os.utime(cache / sha(1) / ".ready", (old, old))

    removed = housekeeper(home, store, log_store, cache_grace=HOUR).run()

    assert (removed.cache_dirs, removed.cache_bytes) == (1, 200)
    assert not (cache / sha(1)).exists()
    assert (cache / sha(2) / ".ready").exists()


def test_a_cache_shared_by_several_homes_is_left_alone(
    tmp_path: Path, log_store: LogStore, store: StateStore, home: Home
) -> None:
    shared = Home(home.root, shared_cache=tmp_path / "shared")
    cached_version(tmp_path / "shared", sha(1))
    assert housekeeper(shared, store, log_store).run() == Removed()
    assert (tmp_path / "shared" / sha(1) / ".ready").exists()


# -- artifact store --------------------------------------------------------------------------------


def test_bundles_of_old_unused_versions_leave_the_homes_artifact_store(
    home: Home, store: StateStore, log_store: LogStore, tmp_path: Path
) -> None:
    artifacts = FolderStore(home.artifacts)
    labels = {}
    for number in range(1, 9):
        bundle = tmp_path / f"b{number}.tar.gz"
        bundle.write_bytes(b"%d" % number * 10)
        digest = artifacts.put(bundle)
        labels[number] = store.add_version("shop", digest, 10, manifest(), store_url=artifacts.url)
    store.upsert_environment("shop", "prod", manifest(), tmp_path)
    store.set_current_version("shop", "prod", "v2")
    # The newest version lives in another store (shared with others): it counts, but is never deleted.
    store.add_version("shop", sha(50), 1, manifest(), store_url="s3://other-team/bundles")

    removed = housekeeper(home, store, log_store).run()

    assert (removed.bundles, removed.bundle_bytes) == (3, 30)
    assert set(artifacts.list()) == {labels[n].sha256 for n in (2, 5, 6, 7, 8)}
    assert events(store) == ["removed 3 bundles (0.0 MB)"]


# -- the daemon runs it ----------------------------------------------------------------------------


def test_periodic_first_run_comes_after_its_own_delay() -> None:
    runs: list[float] = []
    ticker = Loop("count", lambda: runs.append(time.monotonic()), 60.0, first_delay=0.01)
    ticker.start()
    deadline = time.monotonic() + 5
    while not runs and time.monotonic() < deadline:
        time.sleep(0.01)
    ticker.stop()
    assert len(runs) == 1, "once shortly after start, then only every interval"


@pytest.mark.slow
def test_the_daemon_runs_housekeeping_shortly_after_it_starts(daemon_home: Home, tmp_path: Path) -> None:
    stray = daemon_home.cache / sha(1)
    stray.mkdir()
    (stray / "app.py").write_text("x" * 100)
    log = tmp_path / "old.log"
    log.write_text(line("a month ago", time.time() - 30 * DAY))
    logs = LogStore(daemon_home.log_db)
    assert logs.ingest_file(log, "instance") == 1
    logs.close()

    start_daemon(daemon_home, router_port=free_port())
    store = StateStore(daemon_home.state_db)
    deadline = time.monotonic() + HOUSEKEEPING_FIRST_DELAY + 20
    while not events(store) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert events(store) == ["removed 1 log line, 1 cached version (0.0 MB)"]
    assert not stray.exists()
    store.close()


def test_a_layer_whose_lock_is_held_waits_for_the_next_pass(
    home: Home, store: StateStore, log_store: LogStore
) -> None:
    deps_layer(home.cache, "k-busy")
    # A bootstrap holds the layer's lock: it is installing it, or about to link a version to it.
    with open(home.cache / "deps" / "k-busy.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert housekeeper(home, store, log_store).run() == Removed()
    assert (home.cache / "deps" / "k-busy" / ".ready").exists()
    assert housekeeper(home, store, log_store).run() == Removed(deps_dirs=1, deps_bytes=500)
    assert sorted(p.name for p in (home.cache / "deps").iterdir()) == []

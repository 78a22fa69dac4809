"""An environment's services as instances see them: SQLite by default, managed memcached nodes per zone."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sprout.controlplane.resources import Resources
from sprout.paths import Home
from sprout.spec import parse_manifest
from sprout.state import StateStore


@pytest.fixture
def resources(tmp_path: Path) -> Iterator[Resources]:
    home = Home(tmp_path / "home").ensure()
    keeper = Resources(home, StateStore(home.state_db))
    yield keeper
    keeper.release("shop", "production")


def _manifest(**resources: object) -> object:
    return parse_manifest({"app": {"name": "shop", "web": "x"}, "resources": resources})


def test_defaults_are_sqlite_files_in_the_env_folder(resources: Resources, tmp_path: Path) -> None:
    env = resources.instance_env("shop", "production", _manifest(), {})
    folder = tmp_path / "home" / "envs" / "shop" / "production"
    if os.geteuid() == 0:
        # The app runs as its own user, who cannot enter the home: the folder is that user's, beside it.
        folder = tmp_path / "home-apps" / "envs" / "shop" / "production"
        assert folder.stat().st_uid == pwd.getpwnam("sprout-shop").pw_uid
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert env == {
        "DATABASE_URL": f"sqlite:///{folder / 'database.sqlite3'}",
        "SESSION_STORE_URL": f"sqlite:///{folder / 'sessions.sqlite3'}",
    }


@pytest.mark.skipif(shutil.which("memcached") is None, reason="memcached is not installed")
def test_managed_memcached_nodes_are_kept_and_released(resources: Resources) -> None:
    manifest = _manifest(sessions={"engine": "memcached"})
    env = resources.instance_env("shop", "production", manifest, {}, zone="b")
    url, zones = env["SESSION_STORE_URL"], env["SESSION_STORE_ZONES"]
    a, b = (item.split("=")[1] for item in zones.split(","))
    assert (
        zones.startswith("a=127.0.0.1:") and url == f"memcached://{b},{a}"
    )  # own zone first, no a= prefixes
    assert resources.instance_env("shop", "production", manifest, {}, zone="b")["SESSION_STORE_URL"] == url
    pids = resources.managed_pids("shop", "production")
    assert len(pids) == 2

    # A lost node comes back on its old port, so running instances keep a valid URL.
    victim = psutil.Process(pids[0])
    victim.kill()
    victim.wait(5)  # our child (the test started it): reap it so it is gone, not a zombie
    resources.sync("shop", "production", manifest)
    assert resources.instance_env("shop", "production", manifest, {}, zone="b")["SESSION_STORE_URL"] == url
    assert pids[0] not in resources.managed_pids("shop", "production")

    # No longer wanted: stopped.
    current = resources.managed_pids("shop", "production")
    resources.sync("shop", "production", _manifest())
    assert resources.managed_pids("shop", "production") == []
    assert not [pid for pid in current if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_a_session_store_password_makes_its_url_a_secret(resources: Resources) -> None:
    manifest = _manifest(
        sessions={"engine": "redis", "url": "redis://127.0.0.1:6379/0", "password": "env:SESSIONS_PASSWORD"}
    )
    secrets = {"API_KEY": "k", "resources.sessions.password": "p@ss/word"}
    env = resources.instance_env("shop", "production", manifest, secrets)
    assert "SESSION_STORE_URL" not in env
    assert secrets == {"API_KEY": "k", "SESSION_STORE_URL": "redis://:p%40ss%2Fword@127.0.0.1:6379/0"}

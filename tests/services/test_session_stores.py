"""Every session backend keeps the same contract: get/set/delete/touch with a TTL, picked by URL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprout.runtime.sessions import (
    MemcachedAddress,
    RedisStore,
    ReplicatedMemcachedStore,
    SessionStore,
    SessionStoreError,
    SQLiteStore,
    parse_memcached_url,
    store_from_url,
)
from sprout.services.memcached import MemcachedNode, session_store_url


@pytest.fixture(params=["sqlite", "memcached", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "sqlite":
        opened: SessionStore = store_from_url(f"sqlite:///{tmp_path}/s/sessions.sqlite3")
    elif request.param == "memcached":
        nodes: list[MemcachedNode] = request.getfixturevalue("memcached_nodes")
        opened = store_from_url(session_store_url(nodes), zone="a")
    else:
        opened = store_from_url("redis://127.0.0.1:6379/0")
    yield opened
    opened.close()


def test_set_get_delete(store: SessionStore) -> None:
    sid = secrets.token_urlsafe(16)
    assert store.get(sid) is None
    store.set(sid, {"cart": {"3": 2}, "email": "fan@example.org"}, 60)
    assert store.get(sid) == {"cart": {"3": 2}, "email": "fan@example.org"}
    store.set(sid, {"cart": {}}, 60)
    assert store.get(sid) == {"cart": {}}
    store.delete(sid)
    assert store.get(sid) is None


def test_touch_extends_only_live_sessions(store: SessionStore) -> None:
    sid = secrets.token_urlsafe(16)
    assert store.touch(sid, 60) is False
    store.set(sid, {"n": 1}, 60)
    assert store.touch(sid, 120) is True
    assert store.get(sid) == {"n": 1}
    store.delete(sid)


def test_ping_answers(store: SessionStore) -> None:
    store.ping()


def test_sqlite_expired_sessions_are_gone(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.sqlite3"))
    store.set("old", {"n": 1}, -1)
    assert store.get("old") is None
    assert store.touch("old", 60) is False
    store.close()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///relative.sqlite3", SQLiteStore),
        ("memcached://127.0.0.1:11211", ReplicatedMemcachedStore),
        ("redis://127.0.0.1:6379/0", RedisStore),
    ],
)
def test_url_picks_the_backend(url: str, kind: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = store_from_url(url)
    assert isinstance(store, kind)
    store.close()


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("memcached://h1:1,h2:2", [MemcachedAddress("h1", 1), MemcachedAddress("h2", 2)]),
        ("memcached://a=h1:1,b=h2:2", [MemcachedAddress("h1", 1, "a"), MemcachedAddress("h2", 2, "b")]),
        ("memcached://a=[::1]:11211", [MemcachedAddress("::1", 11211, "a")]),
    ],
)
def test_memcached_url_forms(url: str, nodes: list[MemcachedAddress]) -> None:
    assert parse_memcached_url(url) == nodes


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://x",
            "SESSION_STORE_URL 'ftp://x': unknown scheme 'ftp'; use sqlite:///, memcached:// or redis://",
        ),
        ("sqlite://x", "SESSION_STORE_URL 'sqlite://x': write SQLite paths as sqlite:///path"),
        ("memcached://", "SESSION_STORE_URL 'memcached://' names no memcached node"),
        (
            "memcached://h1",
            "SESSION_STORE_URL 'memcached://h1': node 'h1' is not host:port or zone=host:port",
        ),
    ],
)
def test_bad_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(SessionStoreError) as err:
        store_from_url(url)
    assert str(err.value) == message


def test_unreachable_store_fails_fast_with_a_clear_error() -> None:
    store = store_from_url("memcached://a=127.0.0.1:9", zone="a")
    with pytest.raises(SessionStoreError, match=r"no replica of the session answers \(a=127\.0\.0\.1:9\)"):
        store.get("x")
    with pytest.raises(SessionStoreError, match="no memcached node answers"):
        store.ping()

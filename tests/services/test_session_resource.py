"""The session-store resource: which SESSION_STORE_URL an environment gets, and its reachability check."""

from __future__ import annotations

from pathlib import Path

import pytest

from sprout.errors import ServiceError, UserError
from sprout.services.memcached import MemcachedNode
from sprout.services.sessions import check_session_store, session_store_env, standard_memcached_env


def test_sqlite_lives_in_the_environment_folder(tmp_path: Path) -> None:
    url = session_store_env("sqlite", tmp_path / "envs" / "shop")["SESSION_STORE_URL"]
    assert url == f"sqlite:///{tmp_path}/envs/shop/sessions.sqlite3"
    check_session_store(url)


def test_memcached_gets_the_managed_nodes(memcached_nodes: list[MemcachedNode], tmp_path: Path) -> None:
    a, b = memcached_nodes
    env = session_store_env("memcached", tmp_path, nodes=memcached_nodes, zone="b")
    assert env == {
        "SESSION_STORE_URL": f"memcached://{b.address},{a.address}",
        "SESSION_STORE_ZONES": f"a={a.address},b={b.address}",
    }
    check_session_store(env["SESSION_STORE_URL"])


@pytest.mark.parametrize(
    ("url", "zone", "env"),
    [
        ("memcached://h1:1,h2:2", "b", {"SESSION_STORE_URL": "memcached://h1:1,h2:2"}),
        (
            "memcached://a=h1:1,b=h2:2",
            "b",
            {"SESSION_STORE_URL": "memcached://h2:2,h1:1", "SESSION_STORE_ZONES": "b=h2:2,a=h1:1"},
        ),
        ("redis://h:6379/0", "a", {"SESSION_STORE_URL": "redis://h:6379/0"}),
    ],
)
def test_a_zone_annotated_url_is_handed_out_in_the_standard_shape(
    url: str, zone: str, env: dict[str, str]
) -> None:
    assert standard_memcached_env(url, zone) == env


def test_an_external_url_wins(tmp_path: Path) -> None:
    env = session_store_env("redis", tmp_path, url="redis://127.0.0.1:6379/0")
    assert env == {"SESSION_STORE_URL": "redis://127.0.0.1:6379/0"}
    check_session_store("redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    ("engine", "error", "message"),
    [
        (
            "memcached",
            ServiceError,
            'sessions: engine "memcached" has no running node; start the nodes first',
        ),
        (
            "redis",
            UserError,
            '[resources.sessions] engine "redis" needs a url, e.g. url = "redis://127.0.0.1:6379/0"',
        ),
        (
            "etcd",
            UserError,
            "[resources.sessions] engine 'etcd' is unknown; use one of sqlite, memcached, redis",
        ),
    ],
)
def test_what_is_missing_is_named(engine: str, error: type[Exception], message: str, tmp_path: Path) -> None:
    with pytest.raises(error) as err:
        session_store_env(engine, tmp_path)
    assert str(err.value) == message


def test_an_unreachable_store_is_a_service_error() -> None:
    with pytest.raises(
        ServiceError, match=r"no memcached node answers .*; check that the session store runs"
    ):
        check_session_store("memcached://a=127.0.0.1:9")
    with pytest.raises(UserError, match="unknown scheme"):
        check_session_store("etcd://x")

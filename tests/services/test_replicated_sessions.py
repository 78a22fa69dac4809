"""Sessions on memcached across two zones survive a node's loss, and an old copy never wins (issue test 3)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from loopback import PORTS
from sprout.runtime.sessions import ReplicatedMemcachedStore, parse_memcached_url
from sprout.services import memcached
from sprout.services.memcached import MemcachedNode

N = 1000


def _store(nodes: list[MemcachedNode], zone: str) -> ReplicatedMemcachedStore:
    # A short retry window so the tests can watch a node come back without waiting.
    return ReplicatedMemcachedStore(
        parse_memcached_url(memcached.session_store_url(nodes, zone), memcached.session_store_zones(nodes)),
        zone=zone,
        retry_after=0.2,
    )


@pytest.fixture
def stores(memcached_nodes: list[MemcachedNode]) -> Iterator[tuple[ReplicatedMemcachedStore, ...]]:
    a, b = _store(memcached_nodes, "a"), _store(memcached_nodes, "b")
    yield a, b
    a.close()
    b.close()


def _put_raw(node: MemcachedNode, sid: str, value: bytes) -> None:
    """Write a session's stored bytes straight into one node, as if the node had kept them."""
    from pymemcache.client.base import Client

    client = Client((node.host, node.port), timeout=1)
    try:
        client.set("s:" + sid, value, expire=600)
    finally:
        client.close()


def _raw(node: MemcachedNode, sid: str) -> bytes | None:
    from pymemcache.client.base import Client

    client = Client((node.host, node.port), timeout=1)
    try:
        value: bytes | None = client.get("s:" + sid)
        return value
    finally:
        client.close()


def test_every_session_lives_on_both_zones_and_is_read_from_the_own_zone_first(
    memcached_nodes: list[MemcachedNode], stores: tuple[ReplicatedMemcachedStore, ...]
) -> None:
    a, b = stores
    a.set("s1", {"cart": {"1": 1}}, 60)
    assert all(_raw(node, "s1") is not None for node in memcached_nodes)
    assert [n.address.zone for n in a.replicas_for("s1")] == ["a", "b"]
    assert [n.address.zone for n in b.replicas_for("s1")] == ["b", "a"]
    assert b.get("s1") == {"cart": {"1": 1}}


def test_losing_a_node_loses_no_session_and_writes_keep_working(
    memcached_nodes: list[MemcachedNode], stores: tuple[ReplicatedMemcachedStore, ...]
) -> None:
    a, b = stores
    for i in range(N):
        a.set(f"sess{i}", {"user": i}, 600)
    os.kill(memcached_nodes[0].pid, signal.SIGKILL)

    lost_from_a = [i for i in range(N) if a.get(f"sess{i}") != {"user": i}]
    lost_from_b = [i for i in range(N) if b.get(f"sess{i}") != {"user": i}]
    assert lost_from_a == [] and lost_from_b == []

    a.set("sess0", {"user": 0, "cart": {"7": 1}}, 600)
    a.set("new", {"fresh": True}, 600)
    assert b.get("sess0") == {"user": 0, "cart": {"7": 1}}
    assert b.get("new") == {"fresh": True}


def test_a_node_that_comes_back_empty_is_refilled_from_its_peer(
    memcached_nodes: list[MemcachedNode], stores: tuple[ReplicatedMemcachedStore, ...]
) -> None:
    a, _ = stores
    for i in range(100):
        a.set(f"sess{i}", {"user": i}, 600)
    old = memcached_nodes[0]
    memcached.stop_node(old)
    back = memcached.start_node("a", 16, port=old.port, ports=PORTS)
    try:
        assert _raw(back, "sess5") is None
        assert [a.get(f"sess{i}") for i in range(100)] == [{"user": i} for i in range(100)]
        assert _raw(back, "sess5") is not None
    finally:
        memcached.stop_node(back)


def test_a_node_that_returns_with_an_old_copy_never_wins(
    memcached_nodes: list[MemcachedNode], stores: tuple[ReplicatedMemcachedStore, ...]
) -> None:
    a, _ = stores
    keys = [f"sess{i}" for i in range(100)]
    for key in keys:
        a.set(key, {"cart": "old"}, 600)
    a.set("gone", {"cart": "old"}, 600)
    node_b = memcached_nodes[1]
    before = {key: _raw(node_b, key) for key in [*keys, "gone"]}
    for key in keys:
        a.set(key, {"cart": "new"}, 600)
    a.delete("gone")
    # Node b comes back from a partition with the copies it held before it: exactly those bytes.
    # (A SIGSTOPped node cannot stand in for this: writes queued in its socket may still land.)
    for key, value in before.items():
        assert value is not None and b"old" in value
        _put_raw(node_b, key, value)
    assert b"old" in (_raw(node_b, "sess1") or b"")

    fresh_b = _store(memcached_nodes, "b")  # an instance in zone b that never saw the partition
    try:
        assert [fresh_b.get(f"sess{i}") for i in range(100)] == [{"cart": "new"}] * 100
        assert fresh_b.get("gone") is None
        assert b"new" in (_raw(node_b, "sess1") or b"")
    finally:
        fresh_b.close()


def test_the_last_write_wins_whichever_zone_wrote_it(stores: tuple[ReplicatedMemcachedStore, ...]) -> None:
    a, b = stores
    a.set("s", {"v": 1}, 60)
    b.set("s", {"v": 2}, 60)
    a.set("s", {"v": 3}, 60)
    assert a.get("s") == b.get("s") == {"v": 3}

"""Managed memcached nodes: start per zone, adopt after a restart, stop by pid, clear error without binary."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from loopback import PORTS
from sprout.errors import ServiceError
from sprout.services import memcached
from sprout.services.memcached import MemcachedNode


def _answers(node: MemcachedNode) -> bool:
    with socket.create_connection((node.host, node.port), timeout=2) as sock:
        sock.sendall(b"version\r\n")
        return sock.recv(64).startswith(b"VERSION ")


def test_one_node_per_zone_on_its_own_loopback_port(memcached_nodes: list[MemcachedNode]) -> None:
    assert [n.zone for n in memcached_nodes] == ["a", "b"]
    assert len({n.port for n in memcached_nodes}) == 2
    assert all(n.host == "127.0.0.1" and n.memory_mb == 16 for n in memcached_nodes)
    assert all(memcached.is_running(n) and _answers(n) for n in memcached_nodes)


def test_session_store_url_puts_the_own_zone_first_and_the_zones_apart(
    memcached_nodes: list[MemcachedNode],
) -> None:
    a, b = memcached_nodes
    assert (
        memcached.session_store_url(memcached_nodes, "a")
        == f"memcached://127.0.0.1:{a.port},127.0.0.1:{b.port}"
    )
    assert (
        memcached.session_store_url(memcached_nodes, "b")
        == f"memcached://127.0.0.1:{b.port},127.0.0.1:{a.port}"
    )
    assert memcached.session_store_zones(memcached_nodes) == f"a=127.0.0.1:{a.port},b=127.0.0.1:{b.port}"


def test_a_restarted_daemon_adopts_running_nodes_and_sees_stopped_ones(
    memcached_nodes: list[MemcachedNode],
) -> None:
    records = [n.to_dict() for n in memcached_nodes]
    assert memcached.stop_node(memcached_nodes[1]) is True
    alive, gone = memcached.adopt(records)
    assert alive == [memcached_nodes[0]]
    assert gone == [memcached_nodes[1]]
    assert memcached.stop_node(memcached_nodes[1]) is False


def test_a_reused_pid_is_not_mistaken_for_the_node(memcached_nodes: list[MemcachedNode]) -> None:
    node = memcached_nodes[0]
    record = node.to_dict() | {
        "started_at": node.started.at - 100,
        "since_boot": node.started.since_boot - 100,
    }
    alive, gone = memcached.adopt([record])
    assert alive == []
    assert memcached.stop_node(gone[0]) is False
    assert memcached.is_running(memcached_nodes[0])


def test_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError) as err:
        memcached.start_node("a", ports=PORTS)
    assert str(err.value) == (
        'sessions: [resources.sessions] engine = "memcached" needs the memcached binary, '
        "which is not on PATH; install it with `apt-get install memcached` (Debian/Ubuntu) or `brew install memcached` (macOS), "
        'or use engine = "sqlite"'
    )


def test_a_node_that_cannot_start_is_reported(memcached_nodes: list[MemcachedNode], tmp_path: Path) -> None:
    taken = memcached_nodes[0].port
    with pytest.raises(ServiceError, match=r"memcached for zone 'c' on 127\.0\.0\.1 failed to start"):
        memcached.start_node("c", port=taken, log_path=tmp_path / "c.log", ports=PORTS)


def test_the_log_folder_is_created(tmp_path: Path) -> None:
    node = memcached.start_node("a", 16, log_path=tmp_path / "envs" / "shop" / "memcached-a.log", ports=PORTS)
    try:
        assert (tmp_path / "envs" / "shop" / "memcached-a.log").exists()
    finally:
        memcached.stop_node(node)

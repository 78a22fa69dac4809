"""Fixtures for the services tests: real memcached processes on free loopback ports, stopped by pid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopback import PORTS
from sprout.services import memcached
from sprout.services.memcached import MemcachedNode


@pytest.fixture
def memcached_nodes(tmp_path: Path) -> Iterator[list[MemcachedNode]]:
    """Two memcached nodes, zones "a" and "b"."""
    nodes = memcached.start_nodes(["a", "b"], memory_mb=16, log_dir=tmp_path, ports=PORTS)
    yield nodes
    memcached.stop_nodes(nodes)

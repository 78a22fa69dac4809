"""Bring back a lost memcached node already holding its peers' items, so no client reads a miss from it.

memcached keeps nothing when it dies, and a client that reads one replica (PHP's session handler with
`memcached.sess_number_of_replicas`, through libmemcached) takes an empty node's miss for a lost session:
it tries the replica only when the node *refuses* the connection. So a node is rebuilt where no client
reaches it, and its port stays closed (connections refused) until it is full:

1. a *filler* memcached on a private port, keeping its items in a memory file (`-e`); every key of the
   peers, listed by `lru_crawler metadump all`, is copied in with its flags and remaining time to live;
2. the filler stops gracefully (SIGUSR1 saves its memory), and the node starts on its real port from that
   file: memcached's warm restart loads the items before it listens;
3. a catch-up pass copies what changed on a peer while the node was being built, with `add` and `cas`
   so that nothing a client wrote to the node since it came back is overwritten.

Step 3 runs after the node listens (memcached loads nothing more once it does), so for its duration the
node lacks what the peer received in the node's last second away: clients that read both copies, or
read a miss from the other node, cover that moment (docs/apps.md, "The moment the node reopens").
"""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import psutil
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

from sprout.errors import ServiceError
from sprout.ports import PortBook
from sprout.services.memcached import STOP_TIMEOUT, MemcachedNode, start_node, stop_node

#: The smallest node a warm restart accepts: it preallocates a page for each of memcached's slab classes.
WARM_RESTART_MIN_MB = 48
#: memcached refuses a memory file saved within the same second it starts in (its clock ticks per second).
CLOCK_TICK = 1.1
#: memcached reads an expiry above 30 days as a unix time.
MAX_RELATIVE_TTL = 30 * 24 * 3600
BATCH = 100
CONNECT_TIMEOUT = 1.0
DUMP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Refill:
    """What a refill did: the node, the keys copied before it listened and after, how long it took."""

    node: MemcachedNode
    copied: int
    caught_up: int
    seconds: float


class _Raw:
    """A pymemcache serde that hands values and flags through untouched (the client's own encoding)."""

    @staticmethod
    def serialize(key: Any, value: tuple[bytes, int]) -> tuple[bytes, int]:
        return value

    @staticmethod
    def deserialize(key: Any, value: bytes, flags: int) -> tuple[bytes, int]:
        return value, flags


def refill_node(
    zone: str,
    port: int,
    peers: list[MemcachedNode],
    memory_mb: int,
    memory_file: Path,
    log_path: Path | None = None,
    *,
    ports: PortBook,
) -> Refill:
    """Start `zone`'s node on `port` holding every item of `peers`; it listens only once it holds them."""
    began = time.monotonic()
    memory_mb = max(memory_mb, WARM_RESTART_MIN_MB)
    for stale in (memory_file, memory_file.with_name(memory_file.name + ".meta")):
        stale.unlink(missing_ok=True)
    # Recorded nowhere: should the daemon die mid-refill, the kernel kills the filler with it.
    filler = start_node(
        zone, memory_mb, log_path=log_path, memory_file=memory_file, ports=ports, die_with_caller=True
    )
    try:
        filled = _copy_all(peers, filler)
        _save(filler)
    except (MemcacheError, OSError) as exc:
        stop_node(filler)
        raise ServiceError(f"memcached zone {zone}: refill from its peers failed ({exc})") from exc
    node = start_node(zone, memory_mb, log_path=log_path, port=port, memory_file=memory_file, ports=ports)
    try:
        if filled and _items(node) == 0:
            # The memory file was refused (see the node's log): fill the node on its port, late but whole.
            _copy_all(peers, node)
        caught_up = _catch_up(peers, node, filled)
    except (MemcacheError, OSError):
        caught_up = 0  # the node runs with what the fill gave it; a peer that failed since has nothing newer
    return Refill(node, len(filled), caught_up, time.monotonic() - began)


def dump_keys(node: MemcachedNode) -> dict[str, int]:
    """Every live key of `node` and its expiry (a unix time, 0 for none), from `lru_crawler metadump`."""
    for _ in range(50):
        raw = _metadump(node)
        if not raw.startswith(b"BUSY"):
            break
        time.sleep(0.05)  # another crawl is running; metadump answers once it is done
    else:
        raise ServiceError(f"memcached {node.address}: lru_crawler stayed busy; cannot list its keys")
    keys = {}
    for line in raw.decode("ascii", "replace").splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "key" in fields:
            keys[unquote(fields["key"])] = max(int(fields.get("exp", "-1")), 0)
    return keys


def _metadump(node: MemcachedNode) -> bytes:
    # Read by hand: metadump ends its lines with a bare "\n", which pymemcache's line reader does not.
    with socket.create_connection((node.host, node.port), timeout=DUMP_TIMEOUT) as conn:
        conn.sendall(b"lru_crawler metadump all\r\n")
        data = b""
        while not (data.endswith(b"END\r\n") or (data.endswith(b"\r\n") and not data.startswith(b"key="))):
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("connection closed during lru_crawler metadump")
            data += chunk
        return data


def _copy_all(peers: list[MemcachedNode], target: MemcachedNode) -> dict[str, tuple[bytes, int, int]]:
    """Copy every key of `peers` into `target`; what was written: key → (value, flags, cas on target)."""
    written: dict[str, tuple[bytes, int, int]] = {}
    with closing(_client(target)) as sink:
        for peer in peers:
            expiries = {k: e for k, e in _alive_keys(peer).items() if k not in written}
            with closing(_client(peer)) as source:
                for batch in _batches(list(expiries)):
                    for key, (value, flags) in source.get_many(batch).items():
                        ttl = _ttl(expiries[key])
                        if ttl is not None and sink.add(key, (value, flags), expire=ttl, noreply=False):
                            written[key] = (value, flags, 0)
            for batch in _batches(list(written)):
                for key, ((value, flags), cas) in sink.gets_many(batch).items():
                    written[key] = (value, flags, int(cas))
    return written


def _catch_up(
    peers: list[MemcachedNode], node: MemcachedNode, filled: dict[str, tuple[bytes, int, int]]
) -> int:
    """Copy what changed on a peer since the fill into `node`, unless a client wrote it there since."""
    changed = 0
    with closing(_client(node)) as sink:
        for peer in peers:
            expiries = _alive_keys(peer)
            with closing(_client(peer)) as source:
                for batch in _batches(list(expiries)):
                    now = sink.gets_many(batch)
                    for key, (value, flags) in source.get_many(batch).items():
                        ttl = _ttl(expiries[key])
                        if ttl is None:
                            continue
                        if key not in now:
                            # Written to the peer while the node was away: `add` loses to a client's write.
                            changed += bool(sink.add(key, (value, flags), expire=ttl, noreply=False))
                            continue
                        (current, cas) = now[key]
                        before = filled.get(key)
                        # The node still holds exactly what the fill put there, and the peer has moved on.
                        if before and int(cas) == before[2] and current != (value, flags):
                            changed += bool(sink.cas(key, (value, flags), cas, expire=ttl, noreply=False))
    return changed


def _alive_keys(peer: MemcachedNode) -> dict[str, int]:
    try:
        return dump_keys(peer)
    except (MemcacheError, OSError) as exc:
        raise ServiceError(f"memcached {peer.address}: cannot read its keys ({exc})") from exc


def _ttl(expiry: int) -> int | None:
    """The time to live to give a copy of an item expiring at `expiry`; None when it has expired."""
    if expiry == 0:
        return 0
    left = expiry - int(time.time())
    if left <= 0:
        return None
    return left if left <= MAX_RELATIVE_TTL else expiry


def _save(filler: MemcachedNode) -> None:
    """Stop the filler gracefully so it saves its memory file, then let memcached's clock move on."""
    proc = psutil.Process(filler.pid)
    os.kill(filler.pid, signal.SIGUSR1)
    try:
        proc.wait(STOP_TIMEOUT)
    except psutil.TimeoutExpired as exc:
        raise OSError(f"filler {filler.address} did not save its memory in {STOP_TIMEOUT}s") from exc
    time.sleep(CLOCK_TICK)


def _items(node: MemcachedNode) -> int:
    with closing(_client(node)) as client:
        return int(client.stats().get(b"curr_items", 0))


def _batches(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + BATCH] for i in range(0, len(keys), BATCH)]


def _client(node: MemcachedNode) -> Client:
    return Client(
        (node.host, node.port), serde=_Raw(), connect_timeout=CONNECT_TIMEOUT, timeout=5.0, no_delay=True
    )

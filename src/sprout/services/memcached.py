"""Managed memcached nodes: one process per zone on loopback, recorded by pid so a new daemon adopts them."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from sprout.errors import ServiceError
from sprout.ports import PortBook
from sprout.process_start import Start

START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
DEFAULT_MEMORY_MB = 64


@dataclass(frozen=True)
class MemcachedNode:
    """A memcached process Sprout started: where it listens and how to recognise it after a restart."""

    zone: str
    host: str
    port: int
    pid: int
    started: Start  # tells our process from a reused pid
    memory_mb: int

    @property
    def address(self) -> str:
        """`host:port` of the node."""
        return f"{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record for the state store."""
        fields = {"zone": self.zone, "host": self.host, "port": self.port, "pid": self.pid}
        return fields | self.started.to_record() | {"memory_mb": self.memory_mb}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemcachedNode:
        """Rebuild a node from its recorded dict."""
        return cls(
            zone=str(data["zone"]),
            host=str(data["host"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            started=Start.from_record(data),
            memory_mb=int(data["memory_mb"]),
        )


def memcached_binary() -> str:
    """Path of the `memcached` executable, or a ServiceError saying how to install it."""
    path = shutil.which("memcached")
    if path is None:
        raise ServiceError(
            'sessions: [resources.sessions] engine = "memcached" needs the memcached binary, which is '
            "not on PATH; install it with `apt-get install memcached` (Debian/Ubuntu) or "
            '`brew install memcached` (macOS), or use engine = "sqlite"'
        )
    return path


def start_node(
    zone: str,
    memory_mb: int = DEFAULT_MEMORY_MB,
    host: str = "127.0.0.1",
    log_path: Path | None = None,
    port: int | None = None,
    memory_file: Path | None = None,
    *,
    ports: PortBook,
    die_with_caller: bool = False,
) -> MemcachedNode:
    """Start a memcached process for `zone` on a port leased from `ports` (or on `port`, when nothing else
    holds it); return once it accepts connections.

    With `memory_file`, memcached keeps its items in that file and, when a graceful stop (SIGUSR1) saved
    it, starts with them (its warm restart): see `sprout.services.refill`. With `die_with_caller`, the
    kernel kills it when the thread that started it ends: a scratch node no record names must not outlive
    a daemon killed while using it.
    """
    binary = memcached_binary()
    attempts = 1 if port is not None else 3
    last_error = f"port {port} is taken"
    owner = f"memcached {zone}"
    for _ in range(attempts):
        if port is None:
            chosen = ports.lease(owner, host)
        elif ports.claim(port, owner, host):
            chosen = port
        else:
            break
        cmd = [binary, "-l", host, "-p", str(chosen), "-U", "0", "-m", str(memory_mb), "-c", "1024"]
        if memory_file is not None:
            cmd += ["-e", str(memory_file)]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]  # memcached refuses to run as root without naming the user
        if die_with_caller:
            # util-linux's setpriv (Essential in Debian) sets the parent-death signal and execs memcached in
            # place (same pid); preexec_fn would run Python in the child of a threaded daemon.
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        proc = _spawn(cmd, log_path)
        ports.hand_over(chosen, owner, proc.pid)
        if _wait_listening(proc, host, chosen):
            started = Start.of(psutil.Process(proc.pid))
            return MemcachedNode(zone, host, chosen, proc.pid, started, memory_mb)
        last_error = f"exited with code {proc.returncode}" if proc.poll() is not None else "did not listen"
        _terminate([proc.pid])
        ports.release(chosen, owner)
    where = f" (log: {log_path})" if log_path else ""
    raise ServiceError(
        f"sessions: memcached for zone {zone!r} on {host} failed to start ({last_error}){where}; "
        "check that the port range is free and the memory limit is valid"
    )


def start_nodes(
    zones: list[str], memory_mb: int = DEFAULT_MEMORY_MB, log_dir: Path | None = None, *, ports: PortBook
) -> list[MemcachedNode]:
    """Start one node per zone; on any failure stop the ones already started."""
    nodes: list[MemcachedNode] = []
    try:
        for zone in zones:
            log_path = log_dir / f"memcached-{zone}.log" if log_dir else None
            nodes.append(start_node(zone, memory_mb, log_path=log_path, ports=ports))
    except ServiceError:
        stop_nodes(nodes)
        raise
    return nodes


def is_running(node: MemcachedNode) -> bool:
    """True when the recorded process is still alive and is the one Sprout started."""
    try:
        proc = psutil.Process(node.pid)
        return node.started.matches(proc) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def adopt(records: list[dict[str, Any]]) -> tuple[list[MemcachedNode], list[MemcachedNode]]:
    """Split recorded nodes into those still running (adopted as they are) and those gone."""
    alive: list[MemcachedNode] = []
    gone: list[MemcachedNode] = []
    for record in records:
        node = MemcachedNode.from_dict(record)
        (alive if is_running(node) else gone).append(node)
    return alive, gone


def stop_node(node: MemcachedNode, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the node's process by pid (SIGTERM, then SIGKILL after `timeout`); False if it was not running."""
    return stop_nodes([node], timeout) == [node]


def stop_nodes(nodes: list[MemcachedNode], timeout: float = STOP_TIMEOUT) -> list[MemcachedNode]:
    """Stop several nodes at once (memcached takes about a second to exit); return those that were running."""
    running = [node for node in nodes if is_running(node)]
    _terminate([node.pid for node in running], timeout)
    return running


def item_count(node: MemcachedNode, timeout: float = 0.5) -> int | None:
    """How many items the node holds (`stats curr_items`), or None when it does not answer."""
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheError

    client = Client((node.host, node.port), connect_timeout=timeout, timeout=timeout)
    try:
        return int(client.stats().get(b"curr_items", 0))
    except (MemcacheError, OSError):
        return None
    finally:
        client.close()


def session_store_url(nodes: list[MemcachedNode], zone: str | None = None) -> str:
    """SESSION_STORE_URL for the nodes, `zone`'s node first: `memcached://127.0.0.1:2,127.0.0.1:1`."""
    ordered = sorted(nodes, key=lambda n: n.zone != zone)
    return "memcached://" + ",".join(n.address for n in ordered)


def session_store_zones(nodes: list[MemcachedNode]) -> str:
    """SESSION_STORE_ZONES for the nodes, the zone of each: `a=127.0.0.1:1,b=127.0.0.1:2`."""
    return ",".join(f"{n.zone}={n.address}" for n in nodes)


def _spawn(cmd: list[str], log_path: Path | None) -> subprocess.Popen[bytes]:
    if log_path is None:
        null = subprocess.DEVNULL
        return subprocess.Popen(cmd, stdout=null, stderr=null, start_new_session=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_listening(proc: subprocess.Popen[bytes], host: str, port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        # Ask the kernel rather than connect: another process may own the port we raced for.
        try:
            listening = psutil.Process(proc.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in listening):
            return True
        time.sleep(0.02)
    return False


def _terminate(pids: list[int], timeout: float = STOP_TIMEOUT) -> None:
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for survivor in alive:
        try:
            survivor.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=timeout)

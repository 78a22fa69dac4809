"""ElastiCache memcached auto discovery: the node list from a cluster's configuration endpoint."""

from __future__ import annotations

import socket

from sprout.errors import ServiceError


def parse_config(payload: bytes) -> list[str]:
    """The `host:port` of each node in a `config get cluster` answer (`host|ip|port` entries)."""
    lines = payload.decode("ascii", "replace").replace("\r", "").split("\n")
    if not lines or not lines[0].startswith("CONFIG cluster") or len(lines) < 3:
        raise ValueError(f"not a cluster config answer: {payload[:80]!r}")
    nodes = []
    for entry in lines[2].split():
        host, ip, port = entry.split("|")
        nodes.append(f"{ip or host}:{port}")
    return nodes


def discover(address: str, timeout: float = 3.0) -> list[str]:
    """Ask the configuration endpoint `host:port` for the cluster's nodes."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.sendall(b"config get cluster\r\n")
            data = b""
            while not data.endswith(b"END\r\n") and not data.startswith(b"ERROR"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        return parse_config(data)
    except (OSError, ValueError) as exc:
        raise ServiceError(f"memcached auto discovery at {address}: {exc}") from exc

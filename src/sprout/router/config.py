"""Named limits and timeouts of the router, with the defaults a user gets without tuning."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sprout.accessfiles import ROTATE_BYTES
from sprout.errors import UserError


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Every limit and timeout the router enforces; each has a name, a default and a CLI option."""

    # Client side (RFC 9112 limits and slowloris protection).
    max_header_bytes: int = 16 * 1024
    max_request_line: int = 8 * 1024
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_connections: int = 10_000
    # Upstream side.
    connect_timeout: float = 3.0
    response_timeout: float = 60.0
    upstream_idle_timeout: float = 4.0
    max_idle_per_target: int = 512
    max_retries: int = 2
    # Bytes of request body kept so that a failed attempt can be replayed on another target.
    replay_limit: int = 64 * 1024
    # Edge cache (used only by routes with "cache": true).
    cache_bytes: int = 64 * 1024 * 1024
    cache_object_bytes: int = 1024 * 1024
    # Peers whose Forwarded/X-Forwarded-*/X-Real-IP headers are believed (CIDRs); everyone else's are replaced.
    trusted_proxies: tuple[str, ...] = ()
    # Admin API: it authenticates from the head before reading a body, and bounds what a caller can hold.
    admin_max_connections: int = 128
    admin_max_body: int = 16 * 1024 * 1024
    admin_header_timeout: float = 5.0
    admin_body_timeout: float = 10.0
    # Process lifecycle.
    shutdown_timeout: float = 30.0
    access_log_flush: float = 1.0
    # Share of successful requests written to the access files; errors and slow requests are always kept.
    access_sample: float = 1.0
    # Seconds from which a request is slow: kept and indexed like an error.
    access_slow: float = 1.0
    # Size at which the current access file is renamed aside (the control plane compresses it).
    access_rotate_bytes: int = ROTATE_BYTES

    def __post_init__(self) -> None:
        if not 0.0 <= self.access_sample <= 1.0:
            raise UserError(
                f"--access-sample {self.access_sample}: give a share from 0 to 1 (1 keeps every line)"
            )

    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """`trusted_proxies` as networks; UserError naming an entry that is not an address or CIDR."""
        networks = []
        for entry in self.trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise UserError(
                    f"--trusted-proxy {entry!r}: not an address or CIDR; give one like 10.0.0.5 or 10.0.0.0/24"
                ) from exc
        return tuple(networks)

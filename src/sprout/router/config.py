"""Named limits and timeouts of the router, with the defaults a user gets without tuning."""

from __future__ import annotations

from dataclasses import dataclass


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
    # Process lifecycle.
    shutdown_timeout: float = 30.0
    access_log_flush: float = 1.0

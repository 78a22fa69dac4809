"""Active health checks: one loop per target probing its health path on a fresh connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sprout.router.table import HealthSpec
from sprout.router.target import State, Target


async def probe(host: str, port: int, spec: HealthSpec) -> bool:
    """One check: GET the health path and compare the status with the expected range."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(spec.timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET {spec.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: sprout-router-health\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            line = await reader.readline()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        return False
    finally:
        if writer is not None:
            writer.close()
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return False
    low, high = spec.expected_status
    return low <= int(parts[1]) <= high


async def check_loop(target: Target, spec_of: Callable[[Target], HealthSpec | None]) -> None:
    """Probe `target` every interval until it leaves the table; thresholds move its state."""
    while target.state not in (State.DRAINING, State.DRAINED):
        spec = spec_of(target)
        if spec is None:
            return
        ok = await probe(target.host, target.port, spec)
        target.record_check(ok, spec.healthy_threshold, spec.unhealthy_threshold)
        await asyncio.sleep(spec.interval)

"""Active health checks: one loop per target probing its health path on a fresh connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sprout.router.table import HealthSpec
from sprout.router.target import State, Target


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: the status the target answered, or why it answered none."""

    path: str
    ok: bool
    status: int | None
    error: str | None
    latency: float
    at: float

    def same_outcome(self, other: CheckResult | None) -> bool:
        """The same answer as `other` (same status, or the same failure), latency aside."""
        return other is not None and (self.path, self.status, self.error) == (
            other.path,
            other.status,
            other.error,
        )

    def to_json(self, repeats: int) -> dict[str, Any]:
        """The check as the admin API shows it; `repeats` counts checks in a row with this outcome."""
        return {
            "path": self.path,
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
            "latency_ms": round(self.latency * 1000, 1),
            "at": self.at,
            "repeats": repeats,
        }


async def probe(host: str, port: int, spec: HealthSpec) -> CheckResult:
    """One check: GET the health path and compare the status with the expected range."""
    writer: asyncio.StreamWriter | None = None
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(spec.timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET {spec.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: sprout-router-health\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            line = await reader.readline()
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            error = "closed without an HTTP answer" if not line else "answered something other than HTTP"
        else:
            status = int(parts[1])
    except TimeoutError:
        error = f"no answer within {spec.timeout:g}s"
    except ConnectionRefusedError:
        error = "connection refused"
    except OSError as exc:
        error = (exc.strerror or str(exc) or type(exc).__name__).lower()
    except (asyncio.IncompleteReadError, ValueError):
        error = "closed without an HTTP answer"
    finally:
        if writer is not None:
            writer.close()
    low, high = spec.expected_status
    ok = status is not None and low <= status <= high
    return CheckResult(spec.path, ok, status, error, time.monotonic() - started, time.time())


async def check_loop(target: Target, spec_of: Callable[[Target], HealthSpec | None]) -> None:
    """Probe `target` every interval until it leaves the table; thresholds move its state."""
    while target.state not in (State.DRAINING, State.DRAINED):
        spec = spec_of(target)
        if spec is None:
            return
        result = await probe(target.host, target.port, spec)
        target.note_check(result)
        target.record_check(result.ok, spec.healthy_threshold, spec.unhealthy_threshold)
        await asyncio.sleep(spec.interval)

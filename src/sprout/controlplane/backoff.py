"""Crash-loop protection of one environment: launches wait, longer each time, while its instances fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Back-off after instances die before becoming healthy: first delay, doubling, capped.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
#: Failures closer together than this are one round (the instances of one launch failing together).
ROUND = 1.0


@dataclass
class Backoff:
    """Failures in a row of one environment's instances, and when the next launch may happen."""

    failures: int = 0
    not_before: float = 0.0
    #: When the first of these failures happened (None while the environment is not failing).
    since: float | None = None
    #: When the last failure happened, and the seconds between the last two rounds of failures.
    last: float | None = None
    period: float = 0.0
    #: The first delay and the cap (the defaults suit instance launches).
    first: float = BACKOFF_FIRST
    cap: float = BACKOFF_MAX

    @property
    def delay(self) -> float:
        """Seconds between launches at the current failure count."""
        return float(min(self.cap, self.first * 2 ** max(self.failures - 1, 0)))

    def failed(self, now: float) -> None:
        """One more instance failed before it was healthy: push the next launch back."""
        self.failures += 1
        if self.since is None:
            self.since = now
        if self.last is not None and now - self.last >= ROUND:
            self.period = now - self.last
        self.last = now
        self.not_before = now + self.delay

    def succeeded(self) -> None:
        """An instance is healthy: launches go at full speed again."""
        self.failures = 0
        self.not_before = 0.0
        self.since = None
        self.last = None
        self.period = 0.0

    def report(self) -> dict[str, Any] | None:
        """`{since, retry_every, failures}` for the status document while failing, else None.

        `retry_every` is what a user waits between attempts: the back-off delay, or the time the last
        round took when longer (an instance that never turns healthy is replaced only after its grace).
        """
        if self.since is None:
            return None
        every = round(max(self.delay, self.period), 1)
        return {"since": self.since, "retry_every": every, "failures": self.failures}

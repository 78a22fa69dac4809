"""A target (one app instance) as an explicit state machine that counts its in-flight requests."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from sprout.accessfiles import where
from sprout.router.metrics import Stats

if TYPE_CHECKING:
    from sprout.router.exchange import Exchange
    from sprout.router.health import CheckResult
    from sprout.router.upstream import Pool

log: Final = logging.getLogger("sprout.router")


class State(enum.StrEnum):
    """Where a target is in its life: only HEALTHY targets receive new requests."""

    ADDING = "adding"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    DRAINED = "drained"


class Target:
    """Runtime view of one target: state, health counters, in-flight requests and its connection pool."""

    __slots__ = (
        "address",
        "check_repeats",
        "exchanges",
        "fails",
        "group",
        "group_stats",
        "host",
        "id",
        "last_check",
        "log_where",
        "on_change",
        "passes",
        "pool",
        "port",
        "route",
        "state",
        "stats",
        "version",
        "zone",
    )

    def __init__(self, target_id: str, host: str, port: int, on_change: Callable[[Target], None]) -> None:
        self.id = target_id
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self.zone = ""
        self.version = ""
        self.group = ""
        self.route = ""
        #: `target\tversion\tzone` for the access log, kept in step by `place`.
        self.log_where = where(target_id, "", "")
        self.state = State.ADDING
        self.passes = 0
        self.fails = 0
        self.stats = Stats()
        self.group_stats = Stats()
        self.exchanges: set[Exchange] = set()
        self.pool: Pool | None = None
        self.on_change = on_change
        self.last_check: CheckResult | None = None
        self.check_repeats = 0

    def place(self, route: str, group: str, version: str, zone: str) -> None:
        """Set where the table puts this target: its route, group, version and zone."""
        self.route, self.group, self.version, self.zone = route, group, version, zone
        self.log_where = where(self.id, version, zone)

    @property
    def in_flight(self) -> int:
        """Requests sent to this target and not yet answered."""
        return self.stats.in_flight

    def _move(self, state: State, why: str) -> None:
        if state is self.state:
            return
        log.info("target %s (%s): %s -> %s (%s)", self.id, self.address, self.state, state, why)
        self.state = state
        self.on_change(self)

    def note_check(self, result: CheckResult) -> None:
        """Keep the last active check's outcome, counting how many checks in a row gave it."""
        self.check_repeats = self.check_repeats + 1 if result.same_outcome(self.last_check) else 1
        self.last_check = result

    def record_check(self, ok: bool, healthy_threshold: int, unhealthy_threshold: int) -> None:
        """Count one active check result and move state when a threshold is reached."""
        if self.state in (State.DRAINING, State.DRAINED):
            return
        if ok:
            self.passes += 1
            self.fails = 0
            if self.state is not State.HEALTHY and self.passes >= healthy_threshold:
                self._move(State.HEALTHY, f"{self.passes} passing checks")
        else:
            self.fails += 1
            self.passes = 0
            if self.state is State.HEALTHY and self.fails >= unhealthy_threshold:
                self._move(State.UNHEALTHY, f"{self.fails} failing checks")

    def passive_failure(self, why: str) -> None:
        """A connect failed: take the target out of rotation at once; active checks bring it back."""
        if self.state is State.HEALTHY:
            self.passes = 0
            self._move(State.UNHEALTHY, why)

    def begin_drain(self) -> None:
        """Stop sending new requests; in-flight ones continue until they end or the deadline passes."""
        if self.state not in (State.DRAINING, State.DRAINED):
            self._move(State.DRAINING, "drain requested")

    def finish_drain(self) -> None:
        """Mark the drain done and close pooled connections."""
        if self.state is not State.DRAINED:
            if self.pool is not None:
                self.pool.close_all()
            self._move(State.DRAINED, f"drained with {self.in_flight} requests cut")

    def describe(self) -> dict[str, Any]:
        """The `GET /targets/{id}` document."""
        return {
            "id": self.id,
            "address": self.address,
            "state": str(self.state),
            "healthy": self.state is State.HEALTHY,
            "in_flight": self.in_flight,
            "zone": self.zone,
            "version": self.version,
            "group": self.group,
            "route": self.route,
            "check": self.last_check.to_json(self.check_repeats) if self.last_check else None,
        }

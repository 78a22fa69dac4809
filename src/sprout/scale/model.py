"""What the scaler reads and returns: a metrics sample, the fleet, and a decision with its reason."""

from __future__ import annotations

from typing import NamedTuple

from sprout.scale.schedule import NO_SCHEDULE, ScheduleState


class MetricSample(NamedTuple):
    """One second of an environment's router metrics, summed or averaged over its serving instances."""

    request_rate: float = 0.0
    """Requests per second arriving for the environment (all instances together)."""
    concurrency: float = 0.0
    """Requests in flight for the environment (all instances together)."""
    cpu: float = 0.0
    """Mean CPU percent per serving instance (psutil)."""
    p95_latency: float = 0.0
    """95th percentile latency over the last second, in seconds."""


class Fleet(NamedTuple):
    """The environment's instances by state; launching ones are not serving yet (warm-up)."""

    serving: int
    launching: int = 0
    draining: int = 0
    releasing: bool = False
    """A release is moving traffic between fleets: the old fleet is not scaled meanwhile."""

    @property
    def capacity(self) -> int:
        """Instances counted as capacity for scaling decisions: serving plus launching."""
        return self.serving + self.launching


class Decision(NamedTuple):
    """The desired number of instances, why, and which policy decided it."""

    desired: int
    reason: str
    policy: str
    recommendation: int = 0
    """What the policies asked for before stabilization and bounds; the scaler's window remembers it."""


class Memory(NamedTuple):
    """What the stateful scaler remembers between seconds, handed to the pure `decide`."""

    highest_recent: int | None = None
    """The highest recommendation within the scale-in stabilization window before now."""
    forecast: float | None = None
    """Predicted demand (in instances) one warm-up ahead, when predictive scaling is on."""
    last_scale_in_at: float | None = None
    """When the fleet last shrank; the next scale-in waits `cooldown` after it."""
    schedule: ScheduleState = NO_SCHEDULE

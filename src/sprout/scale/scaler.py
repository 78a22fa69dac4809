"""The stateful scaler the daemon calls once per second: it remembers, `decide` judges.

It keeps the scale-in stabilization window (a monotonic deque, so the highest recommendation of the
window is read in O(1)), the predictive smoother, when the fleet last shrank, and the schedule's current
state (recomputed only when an action fires or expires).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from sprout.scale.config import Limits
from sprout.scale.model import Decision, Fleet, Memory, MetricSample
from sprout.scale.policy import decide, demand
from sprout.scale.predictive import Holt
from sprout.scale.schedule import NO_SCHEDULE, ScheduleState, active_schedule, next_change
from sprout.spec.scaling import ScalingSection


class Scaler:
    """One environment's scaler: `observe(now, sample, fleet)` once per second returns a `Decision`."""

    def __init__(self, config: ScalingSection, limits: Limits) -> None:
        self.config = config
        self.limits = limits
        self._window: deque[tuple[float, int]] = deque()
        self._fresh = True
        self._holt = Holt() if config.predictive else None
        self._last_scale_in_at: float | None = None
        self._schedule = NO_SCHEDULE
        self._schedule_from = float("inf")
        self._schedule_until = float("-inf")

    def observe(self, now: float, sample: MetricSample, fleet: Fleet) -> Decision:
        """Decide this second's desired capacity and remember its recommendation."""
        config = self.config
        window = self._window
        if self._fresh:
            # A restarted scaler has no window yet: the fleet it finds counts as a recommendation, so it
            # scales in no earlier than a full window after starting.
            window.append((now, fleet.capacity))
            self._fresh = False
        horizon = now - config.scale_in_stabilization
        while window and window[0][0] <= horizon:
            window.popleft()
        forecast = None
        if self._holt is not None:
            needed = demand(config.metric, config.target, sample, fleet.serving)
            if needed is not None:
                self._holt.update(needed)
                forecast = self._holt.forecast(config.warmup)
        memory = Memory(
            window[0][1] if window else None, forecast, self._last_scale_in_at, self._schedule_at(now)
        )
        decision = decide(config, self.limits, fleet, sample, now, memory)
        recommendation = decision.recommendation
        while window and window[-1][1] <= recommendation:
            window.pop()
        window.append((now, recommendation))
        if decision.desired < fleet.capacity:
            self._last_scale_in_at = now
        return decision

    def _schedule_at(self, now: float) -> ScheduleState:
        actions = self.config.schedule
        if not actions:
            return NO_SCHEDULE
        if not self._schedule_from <= now < self._schedule_until:
            self._schedule = active_schedule(actions, now)
            upcoming = next_change(actions, datetime.fromtimestamp(now, UTC))
            self._schedule_from = now
            self._schedule_until = upcoming.timestamp() if upcoming is not None else float("inf")
        return self._schedule

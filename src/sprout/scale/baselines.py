"""Reference autoscalers for the simulator, each built from its documented default behaviour.

Every policy answers `desired(t, load, serving, launching)` once per simulated second with the fleet
size it wants; the simulator launches or removes instances to match.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from sprout.scale.config import Limits


class SimulatedPolicy(Protocol):
    """A policy the simulator can drive, one call per second."""

    name: str

    def desired(self, t: int, load: float, serving: int, launching: int) -> int:
        """The fleet size wanted at second `t` given the offered load (req/s) and the fleet."""
        ...


class Hpa:
    """The Kubernetes Horizontal Pod Autoscaler with its default behaviour.

    From https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/
    ("Algorithm details", "Default behavior"): the controller syncs every 15 s
    (`--horizontal-pod-autoscaler-sync-period`) on a metric averaged over the last 15 s (metrics-server
    resolution); `desired = ceil(ready * metric / target)`, no change within a 10 % tolerance; when scaling
    up, not-yet-ready pods are counted with zero usage and the scale-up is dropped if that brings the
    ratio back within tolerance; scale-up is limited to max(+100 %, +4 pods) per 15 s; scale-down uses the
    highest recommendation of the last 300 s (stabilization window) and may remove all pods in 15 s.
    """

    name = "hpa"
    sync_period = 15
    tolerance = 0.1
    stabilization = 300

    def __init__(self, target: float, limits: Limits) -> None:
        self.target = target
        self.limits = limits
        self._loads: deque[float] = deque(maxlen=self.sync_period)
        self._recommendations: deque[tuple[int, int]] = deque()

    def desired(self, t: int, load: float, serving: int, launching: int) -> int:
        """Act on every 15th second; hold in between."""
        self._loads.append(load)
        current = serving + launching
        if t % self.sync_period:
            return current
        metric = sum(self._loads) / len(self._loads)
        recommendation = self._recommend(metric, serving, launching)
        recommendation = min(recommendation, max(2 * current, current + 4))
        window = self._recommendations
        while window and window[0][0] <= t - self.stabilization:
            window.popleft()
        window.append((t, recommendation))
        if recommendation > current:
            return self.limits.clamp(recommendation)
        return self.limits.clamp(min(current, max(r for _, r in window)))

    def _recommend(self, metric: float, ready: int, unready: int) -> int:
        current = ready + unready
        if ready == 0:
            return max(current, 1 if metric > 0 else 0)
        ratio = metric / ready / self.target
        if abs(ratio - 1.0) <= self.tolerance:
            return current
        if ratio > 1.0 and unready:
            ratio = metric / current / self.target
            if ratio <= 1.0 + self.tolerance:
                return current
            return math.ceil(ratio * current)
        return math.ceil(ratio * ready)


class Asg:
    """EC2 Auto Scaling target tracking with its documented alarms, warm-up and cooldown.

    From https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-target-tracking.html and
    .../ec2-auto-scaling-default-instance-warmup.html: the policy owns two CloudWatch alarms on a
    1-minute metric (here request count per target, i.e. per serving instance); the scale-out alarm
    fires after 3 of 3 datapoints above the target, the scale-in alarm after 15 of 15 below it (AWS sets
    its threshold under the target; 90 % here). While an alarm is in ALARM the policy sets capacity to
    `ceil(serving * metric / target)`. Instances warming up (300 s) count as capacity for scale-out, and
    no scale-in happens while any warms up or within the 300 s cooldown after a scaling activity.
    """

    name = "asg"
    period = 60
    out_datapoints = 3
    in_datapoints = 15
    in_threshold = 0.9
    warmup = 300
    cooldown = 300

    def __init__(self, target: float, limits: Limits) -> None:
        self.target = target
        self.limits = limits
        self._load = 0.0
        self._serving = 0
        self._count = 0
        self._datapoints: deque[float] = deque(maxlen=self.in_datapoints)
        self._launches: deque[int] = deque()
        self._last_activity = -(10**9)

    def desired(self, t: int, load: float, serving: int, launching: int) -> int:
        """Collect the minute's datapoint; evaluate the alarms at each minute's end."""
        current = serving + launching
        self._load += load
        self._serving += serving
        self._count += 1
        if (t + 1) % self.period:
            return current
        # The minute's request count per target: requests over the mean number of serving targets.
        mean_load, mean_serving = self._load / self._count, self._serving / self._count
        metric = mean_load / mean_serving if mean_serving else mean_load
        self._load, self._serving, self._count = 0.0, 0, 0
        points = self._datapoints
        points.append(metric)
        while self._launches and self._launches[0] <= t - self.warmup:
            self._launches.popleft()
        wanted = math.ceil(mean_serving * metric / self.target) if mean_serving else current + 1
        recent = list(points)[-self.out_datapoints :]
        if len(recent) == self.out_datapoints and min(recent) > self.target:
            if wanted > current:
                self._launches.extend([t] * (wanted - current))
                self._last_activity = t
                return self.limits.clamp(wanted)
            return current
        scale_in_alarm = len(points) == self.in_datapoints and max(points) < self.in_threshold * self.target
        quiet = not self._launches and t - self._last_activity >= self.cooldown
        if scale_in_alarm and quiet and wanted < current:
            self._last_activity = t
            return self.limits.clamp(wanted)
        return self.limits.clamp(current)


class FixedPeak:
    """Fixed capacity for the trace's peak: `ceil(max load / capacity)` instances all along."""

    name = "fixed-peak"

    def __init__(self, instances: int) -> None:
        self.instances = instances

    def desired(self, t: int, load: float, serving: int, launching: int) -> int:
        """Always the peak fleet."""
        return self.instances

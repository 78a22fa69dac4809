"""The autoscaling simulator: replay a load trace through a policy and count cost and SLO violations.

The model, second by second:
- the offered load is the trace's rate, held constant over each trace step;
- each serving instance handles `capacity` req/s within the SLO; an instance launched at second `t`
  serves from second `t + launch_delay` on and costs from `t` on;
- a second is an SLO violation when the load exceeds `serving * capacity`;
- a policy sees the load of the current second and the fleet (serving, launching) and answers with the
  fleet size it wants; instances are added at once, and removed at once (launching ones first, since they
  serve nothing yet; draining is not modelled, its few seconds are the same for every policy);
- every policy starts with the fleet its target asks for at the trace's first second, all serving.

The `sprout` policy is the daemon's own `Scaler` fed with per-second samples; it never sees the future.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sprout.cost.prices import CostConfig
from sprout.errors import UserError
from sprout.scale.baselines import Asg, FixedPeak, Hpa, SimulatedPolicy
from sprout.scale.config import Limits
from sprout.scale.model import Fleet, MetricSample
from sprout.scale.scaler import Scaler
from sprout.scale.trace import Trace
from sprout.spec.models import Manifest
from sprout.spec.scaling import ScalingSection

POLICIES = ("sprout", "hpa", "asg", "fixed-peak")
DEFAULT_START = datetime(2026, 6, 14, tzinfo=UTC).timestamp()
DEFAULT_UTILISATION = 0.7
"""Without a manifest, every policy targets 70 % of an instance's capacity (the headroom for a rise)."""
CAMPAIGN_STABILIZATION = 60.0
PLOT_POINTS = 4000


@dataclass(frozen=True, slots=True)
class Scenario:
    """What is simulated: capacity per instance, launch delay, scaling settings, bounds and prices."""

    capacity: float
    launch_delay: int
    config: ScalingSection
    limits: Limits
    size: str = "small"
    prices: CostConfig = field(default_factory=CostConfig)
    start: float = DEFAULT_START

    @property
    def target_rate(self) -> float:
        """The target expressed in requests per second per instance, for the baselines."""
        if self.config.metric == "cpu":
            return self.capacity * self.config.target / 100.0
        return self.config.target


@dataclass(frozen=True, slots=True)
class Series:
    """Downsampled time series for plots: time (s), load and serving capacity (req/s), instances."""

    times: list[int]
    load: list[float]
    capacity: list[float]
    instances: list[int]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """One policy's run over one trace."""

    policy: str
    instance_seconds: int
    violation_seconds: int
    max_instances: int
    cost: float
    series: Series | None = None

    def to_json(self) -> dict[str, Any]:
        """The `--json` document."""
        return {
            "policy": self.policy,
            "instance_seconds": self.instance_seconds,
            "violation_seconds": self.violation_seconds,
            "max_instances": self.max_instances,
            "cost": round(self.cost, 4),
        }


def default_config(capacity: float, launch_delay: int) -> ScalingSection:
    """Sprout's settings without a manifest: the campaign settings recommended in docs/autoscaling.md.

    70 % target (headroom for a rise while instances launch), predictive on, warm-up = launch delay, and
    a 60 s scale-in stabilization window: scale-out reacts within a second, so a scale-in that proves
    premature costs little, while every minute of a longer window is paid for after each peak.
    """
    return ScalingSection(
        metric="requests_per_instance",
        target=DEFAULT_UTILISATION * capacity,
        predictive=True,
        warmup=float(launch_delay),
        scale_in_stabilization=CAMPAIGN_STABILIZATION,
    )


def scenario_from_manifest(manifest: Manifest, capacity: float, launch_delay: int) -> Scenario:
    """A scenario from a validated manifest: its `[scaling]`, `[instances]` min/max/size and `[cost]`."""
    return Scenario(
        capacity,
        launch_delay,
        manifest.scaling,
        Limits.of(manifest.instances),
        manifest.instances.size,
        CostConfig.of(manifest.cost),
    )


def make_policy(name: str, scenario: Scenario, peak_load: float) -> SimulatedPolicy:
    """The named policy, set up for `scenario`."""
    if name == "sprout":
        return _SproutPolicy(scenario)
    if name == "hpa":
        return Hpa(scenario.target_rate, scenario.limits)
    if name == "asg":
        return Asg(scenario.target_rate, scenario.limits)
    if name == "fixed-peak":
        return FixedPeak(max(scenario.limits.minimum, math.ceil(peak_load / scenario.capacity)))
    raise UserError(f"simulate: unknown policy {name!r}; choose one of {', '.join(POLICIES)} or all")


class _SproutPolicy:
    """The daemon's `Scaler`, fed one sample per simulated second."""

    name = "sprout"

    def __init__(self, scenario: Scenario) -> None:
        if scenario.config.metric not in ("requests_per_instance", "cpu"):
            raise UserError(
                f"simulate: the model knows request rate and CPU only, not {scenario.config.metric!r}; "
                "set [scaling] metric to requests_per_instance or cpu for the simulation"
            )
        self._scaler = Scaler(scenario.config, scenario.limits)
        self._start = scenario.start
        self._capacity = scenario.capacity
        self._cpu = scenario.config.metric == "cpu"

    def desired(self, t: int, load: float, serving: int, launching: int) -> int:
        """Ask the scaler, as the daemon would."""
        cpu = min(100.0, 100.0 * load / (serving * self._capacity)) if self._cpu and serving else 0.0
        sample = MetricSample(request_rate=load, cpu=cpu)
        return self._scaler.observe(self._start + t, sample, Fleet(serving, launching)).desired


def simulate(
    trace: Trace, policy_name: str, scenario: Scenario, *, keep_series: bool = False
) -> SimulationResult:
    """Run one policy over the trace and count instance-seconds, violation seconds and cost."""
    loads = trace.per_second()
    policy = make_policy(policy_name, scenario, max(loads))
    capacity = scenario.capacity
    delay = scenario.launch_delay
    if isinstance(policy, FixedPeak):
        serving = policy.instances
    else:
        serving = scenario.limits.clamp(math.ceil(loads[0] / scenario.target_rate))
    ready_at: deque[int] = deque()
    instance_seconds = violations = 0
    peak = serving
    stride = max(1, len(loads) // PLOT_POINTS)
    series = Series([], [], [], []) if keep_series else None
    decide = policy.desired
    for t, load in enumerate(loads):
        while ready_at and ready_at[0] <= t:
            ready_at.popleft()
            serving += 1
        launching = len(ready_at)
        instance_seconds += serving + launching
        if load > serving * capacity:
            violations += 1
        if series is not None and t % stride == 0:
            series.times.append(t)
            series.load.append(load)
            series.capacity.append(serving * capacity)
            series.instances.append(serving + launching)
        wanted = decide(t, load, serving, launching)
        change = wanted - serving - launching
        if change > 0:
            ready_at.extend([t + delay] * change)
            peak = max(peak, wanted)
        elif change < 0:
            removed_launching = min(-change, launching)
            for _ in range(removed_launching):
                ready_at.pop()
            serving += change + removed_launching
    cost = instance_seconds / 3600.0 * scenario.prices.hourly(scenario.size)
    return SimulationResult(policy.name, instance_seconds, violations, peak, cost, series)


def simulate_all(
    trace: Trace, policies: Sequence[str], scenario: Scenario, *, keep_series: bool = False
) -> list[SimulationResult]:
    """Run several policies over the same trace."""
    return [simulate(trace, name, scenario, keep_series=keep_series) for name in policies]


def expand_policies(policy: str) -> list[str]:
    """`all` → every policy; otherwise the one named (validated)."""
    if policy == "all":
        return list(POLICIES)
    if policy not in POLICIES:
        raise UserError(f"simulate: unknown policy {policy!r}; choose one of {', '.join(POLICIES)} or all")
    return [policy]


def load_manifest(path: Path) -> Manifest:
    """The validated manifest at `path`, for its `[scaling]`, `[instances]` and `[cost]`."""
    from sprout.spec import load_manifest as load_spec

    return load_spec(path)

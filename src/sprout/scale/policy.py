"""The scaling policies as pure functions: target tracking, step, and `decide`, which combines them.

Target tracking follows the Kubernetes HPA's replica calculator (`pkg/controller/podautoscaler/
replica_calculator.go`): `desired = ceil(serving * metric / target)`, no change while the ratio is within
the tolerance band. Unlike the HPA it runs every second and scales out at once; it scales in only to the
highest recommendation seen within the stabilization window, and launching instances count as capacity
so that a spike arriving while instances warm up does not launch the same capacity twice.
"""

from __future__ import annotations

import math

from sprout.scale.config import Limits
from sprout.scale.model import Decision, Fleet, Memory, MetricSample
from sprout.spec.scaling import ScalingSection

# Guards `ceil` against float noise: 3.0000000001 instances is 3 instances.
_EPSILON = 1e-9


def metric_value(metric: str, sample: MetricSample, serving: int) -> float:
    """The sample's value of `metric` per serving instance (rates and concurrency are divided)."""
    if metric in ("requests_per_instance", "concurrency"):
        total = sample.request_rate if metric == "requests_per_instance" else sample.concurrency
        if serving:
            return total / serving
        return math.inf if total > 0 else 0.0
    if metric == "cpu":
        return sample.cpu
    return sample.p95_latency


def demand(metric: str, target: float, sample: MetricSample, serving: int) -> float | None:
    """Instances needed to bring `metric` to `target` (fractional); None when nothing can tell."""
    if metric == "requests_per_instance":
        return sample.request_rate / target
    if metric == "concurrency":
        return sample.concurrency / target
    if serving == 0:
        return None
    value = sample.cpu if metric == "cpu" else sample.p95_latency
    return serving * value / target


def target_tracking(config: ScalingSection, sample: MetricSample, fleet: Fleet) -> tuple[int, str]:
    """HPA-style proportional recommendation with a tolerance band; launching instances count."""
    needed = demand(config.metric, config.target, sample, fleet.serving)
    current = fleet.capacity
    if needed is None:
        return current, f"no {config.metric} reading without serving instances"
    value = metric_value(config.metric, sample, fleet.serving)
    shown = f"{config.metric} {value:.3g}/target {config.target:g}"
    # Request rate and concurrency ask for an absolute number of instances, so the band is around the
    # capacity already on its way (serving + launching); CPU and latency are readings of the serving
    # instances only, so their band is around those.
    absolute = config.metric in ("requests_per_instance", "concurrency")
    reference = current if absolute else fleet.serving
    if reference and abs(needed / reference - 1.0) <= config.tolerance:
        return current, f"{shown} within ±{config.tolerance:.0%}"
    return max(0, math.ceil(needed - _EPSILON)), f"{shown} needs {needed:.2f} instances"


def step_recommendation(config: ScalingSection, sample: MetricSample, fleet: Fleet) -> tuple[int, str]:
    """The first matching step applied to the serving instances."""
    value = metric_value(config.metric, sample, fleet.serving)
    for step in config.step:
        if not step.matches(value):
            continue
        wanted = max(0, step.apply(fleet.serving))
        shown = f"{config.metric} {value:.3g} in step [{step.lower}, {step.upper})"
        return wanted, f"{shown} asks for {wanted}"
    return fleet.capacity, f"{config.metric} {value:.3g} matches no step"


def recommend(
    config: ScalingSection, sample: MetricSample, fleet: Fleet, memory: Memory
) -> tuple[int, str, str]:
    """The policies' combined recommendation, its reason and the policy that set it."""
    if not config.enabled:
        return fleet.capacity, "scaling is disabled", "none"
    candidates: list[tuple[int, str, str]] = []
    tracked, why = target_tracking(config, sample, fleet)
    candidates.append((tracked, why, "target_tracking"))
    if config.predictive and memory.forecast is not None:
        ahead = math.ceil(memory.forecast - _EPSILON)
        # The tolerance band applies to forecasts too: noise must not buy an instance ahead of time.
        if ahead > tracked and memory.forecast > fleet.capacity * (1.0 + config.tolerance):
            candidates.append(
                (ahead, f"forecast {memory.forecast:.2f} instances in {config.warmup:g}s", "predictive")
            )
    if config.step:
        stepped, why = step_recommendation(config, sample, fleet)
        candidates.append((stepped, why, "step"))
    # Out as soon as any policy asks; in only as far as all of them allow.
    return max(candidates, key=lambda c: c[0])


def scale_out_limit(config: ScalingSection, current: int) -> int:
    """The most instances one decision may ask for from `current`: x(1 + percent/100) or + instances,
    whichever is larger (the Kubernetes HPA's default: double or add 4 per step)."""
    grown = math.floor(current * (1.0 + config.max_scale_out_percent / 100.0) + _EPSILON)
    return max(grown, current + config.max_scale_out_instances)


def decide(
    config: ScalingSection, limits: Limits, fleet: Fleet, sample: MetricSample, now: float, memory: Memory
) -> Decision:
    """Desired capacity for this second from the metrics, the fleet, the bounds and the scaler's memory."""
    current = fleet.capacity
    schedule = memory.schedule
    low = limits.minimum if schedule.minimum is None else schedule.minimum
    high = limits.maximum if schedule.maximum is None else schedule.maximum
    high = max(low, high)
    if fleet.releasing:
        return Decision(current, "a release is in progress: the fleet is not scaled", "hold", current)
    wanted, why, policy = recommend(config, sample, fleet, memory)
    if (
        schedule.desired is not None
        and schedule.desired_fired_at is not None
        and (policy == "none" or now - schedule.desired_fired_at < config.scale_in_stabilization)
        and schedule.desired > wanted
    ):
        wanted, why, policy = (
            schedule.desired,
            f"scheduled desired {schedule.desired} ({schedule.reason})",
            "schedule",
        )
    recommendation = wanted
    limit = scale_out_limit(config, current)
    if wanted > limit and policy != "schedule":
        # A metric reading is never trusted with more than one step at a time: a burst (a queue released
        # after a stall, a misread counter) buys one doubling, and the next second judges again.
        why = (
            f"{why}; limited to {limit} (at most +{config.max_scale_out_percent:g}% or"
            f" +{config.max_scale_out_instances} per decision)"
        )
        wanted = limit
    if wanted <= current:
        stabilized = wanted if memory.highest_recent is None else max(wanted, memory.highest_recent)
        cooling = memory.last_scale_in_at is not None and now - memory.last_scale_in_at < config.cooldown
        if stabilized < current and cooling:
            why, wanted = f"{why}; scale-in waits for the {config.cooldown:g}s cooldown", current
        elif stabilized < current:
            if stabilized > wanted:
                why = f"{why}; held at {stabilized} by the {config.scale_in_stabilization:g}s stabilization window"
            wanted = stabilized
        else:
            wanted = current
    if wanted < low:
        bound = "scheduled min" if schedule.minimum is not None else "min"
        return Decision(
            low,
            f"{why}; raised to {bound} {low}",
            "schedule" if schedule.minimum is not None else "limits",
            recommendation,
        )
    if wanted > high:
        bound = "scheduled max" if schedule.maximum is not None else "max"
        return Decision(
            high,
            f"{why}; capped at {bound} {high}",
            "schedule" if schedule.maximum is not None else "limits",
            recommendation,
        )
    if wanted == current:
        return Decision(current, f"{why}; no change", policy if policy != "none" else "hold", recommendation)
    return Decision(wanted, f"{why}: {current} → {wanted}", policy, recommendation)

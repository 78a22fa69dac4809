"""Scaling: target tracking on ALB requests per target (or CPU), scheduled actions, optional predictive scaling."""

from __future__ import annotations

from troposphere import GetAtt, Join, Ref, Template
from troposphere.autoscaling import (
    PredefinedMetricSpecification,
    PredictiveScalingConfiguration,
    PredictiveScalingMetricSpecification,
    PredictiveScalingPredefinedMetricPair,
    ScalingPolicy,
    ScheduledAction,
    TargetTrackingConfiguration,
)

from sprout.providers.aws.context import COLOURS, RenderContext, title
from sprout.providers.aws.fleet import Fleet
from sprout.providers.aws.loadbalancer import LoadBalancerRefs
from sprout.spec.scaling import ScheduleEntry

#: Requests per second per instance tracked when `[scaling] metric` has no ALB equivalent.
DEFAULT_REQUESTS_PER_SECOND = 50.0


def tracking_target(ctx: RenderContext) -> tuple[str, float]:
    """The predefined metric and target value for `[scaling]`.

    Sprout's `requests_per_instance` is per second, ALBRequestCountPerTarget per minute. `cpu` maps to
    ASGAverageCPUUtilization; `concurrency` and `p95_latency` have no ALB equivalent per target, so
    they track requests per target too (the closest load signal the ALB publishes).
    """
    scaling = ctx.manifest.scaling
    if scaling.metric == "cpu":
        return "ASGAverageCPUUtilization", scaling.target
    if scaling.metric == "requests_per_instance":
        return "ALBRequestCountPerTarget", scaling.target * 60
    return "ALBRequestCountPerTarget", DEFAULT_REQUESTS_PER_SECOND * 60


def add_scaling(t: Template, ctx: RenderContext, lb: LoadBalancerRefs, fleet: Fleet) -> None:
    """Attach the policies to both colours and the scheduled actions to the live one."""
    scaling = ctx.manifest.scaling
    if not scaling.enabled:
        return
    metric, value = tracking_target(ctx)
    for colour in COLOURS:
        label = Join(
            "/",
            [GetAtt(lb.alb, "LoadBalancerFullName"), GetAtt(lb.target_groups[colour], "TargetGroupFullName")],
        )
        spec = PredefinedMetricSpecification(PredefinedMetricType=metric)
        if metric == "ALBRequestCountPerTarget":
            spec = PredefinedMetricSpecification(PredefinedMetricType=metric, ResourceLabel=label)
        t.add_resource(
            ScalingPolicy(
                f"{title(colour)}TargetTracking",
                AutoScalingGroupName=Ref(fleet.groups[colour]),
                PolicyType="TargetTrackingScaling",
                EstimatedInstanceWarmup=int(scaling.warmup),
                TargetTrackingConfiguration=TargetTrackingConfiguration(
                    PredefinedMetricSpecification=spec, TargetValue=value
                ),
            )
        )
        if scaling.predictive:
            t.add_resource(
                ScalingPolicy(
                    f"{title(colour)}Predictive",
                    AutoScalingGroupName=Ref(fleet.groups[colour]),
                    PolicyType="PredictiveScaling",
                    PredictiveScalingConfiguration=PredictiveScalingConfiguration(
                        Mode="ForecastAndScale",
                        MetricSpecifications=[
                            PredictiveScalingMetricSpecification(
                                TargetValue=scaling.target * 60,
                                PredefinedMetricPairSpecification=PredictiveScalingPredefinedMetricPair(
                                    PredefinedMetricType="ALBRequestCount", ResourceLabel=label
                                ),
                            )
                        ],
                    ),
                )
            )
    # Scheduled actions follow the live colour; a deploy moves them (see deploy.py).
    for i, entry in enumerate(scaling.schedule, start=1):
        t.add_resource(
            ScheduledAction(
                f"Schedule{i}", AutoScalingGroupName=Ref(fleet.groups[ctx.live]), **scheduled_action(entry)
            )
        )


def scheduled_action(entry: ScheduleEntry) -> dict[str, object]:
    """The Auto Scaling scheduled-action properties of a `[[scaling.schedule]]` entry (times in UTC)."""
    props: dict[str, object] = {}
    if entry.cron is not None:
        props["Recurrence"] = entry.cron
    if entry.at is not None:
        props["StartTime"] = entry.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    for key, value in (("MinSize", entry.min), ("MaxSize", entry.max), ("DesiredCapacity", entry.desired)):
        if value is not None:
            props[key] = value
    return props

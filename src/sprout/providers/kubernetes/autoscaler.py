"""`[scaling]` as a HorizontalPodAutoscaler (autoscaling/v2) on the live colour's Deployment."""

from __future__ import annotations

from kubernetes.client import (
    V1ObjectMeta,
    V2CrossVersionObjectReference,
    V2HorizontalPodAutoscaler,
    V2HorizontalPodAutoscalerBehavior,
    V2HorizontalPodAutoscalerSpec,
    V2HPAScalingRules,
    V2MetricIdentifier,
    V2MetricSpec,
    V2MetricTarget,
    V2ObjectMetricSource,
    V2PodsMetricSource,
    V2ResourceMetricSource,
)

from sprout.providers.kubernetes.context import RenderContext
from sprout.providers.kubernetes.network import service_name

#: Custom metric names the HPA asks the custom metrics API for; a metrics adapter (e.g. prometheus-adapter)
#: must publish them from the app's or the ingress controller's request metrics (docs/kubernetes.md).
REQUESTS_METRIC = "http_requests_per_second"
IN_FLIGHT_METRIC = "http_requests_in_flight"
P95_METRIC = "http_request_duration_seconds_p95"
#: The longest stabilization window Kubernetes accepts.
MAX_STABILIZATION = 3600


def quantity(value: float) -> str:
    """A number as a Kubernetes quantity ("50", "12500m")."""
    if value == int(value):
        return str(int(value))
    return f"{round(value * 1000)}m"


def min_replicas(ctx: RenderContext) -> int:
    """`[instances] min`, raised to 1: scaling to zero needs the alpha HPAScaleToZero gate."""
    return max(1, ctx.manifest.instances.min)


def metric(ctx: RenderContext) -> V2MetricSpec:
    """The metric `[scaling] metric` tracks, at `[scaling] target` per instance."""
    scaling = ctx.manifest.scaling
    if scaling.metric == "cpu":
        return V2MetricSpec(
            type="Resource",
            resource=V2ResourceMetricSource(
                name="cpu",
                target=V2MetricTarget(type="Utilization", average_utilization=round(scaling.target)),
            ),
        )
    if scaling.metric == "p95_latency":
        # A percentile of the whole environment is one number, not a per-pod average: an Object metric.
        return V2MetricSpec(
            type="Object",
            object=V2ObjectMetricSource(
                described_object=V2CrossVersionObjectReference(
                    api_version="v1", kind="Service", name=service_name(ctx)
                ),
                metric=V2MetricIdentifier(name=P95_METRIC),
                target=V2MetricTarget(type="Value", value=quantity(scaling.target)),
            ),
        )
    name = REQUESTS_METRIC if scaling.metric == "requests_per_instance" else IN_FLIGHT_METRIC
    return V2MetricSpec(
        type="Pods",
        pods=V2PodsMetricSource(
            metric=V2MetricIdentifier(name=name),
            target=V2MetricTarget(type="AverageValue", average_value=quantity(scaling.target)),
        ),
    )


def autoscaler(ctx: RenderContext) -> V2HorizontalPodAutoscaler:
    """The HPA: min/max from `[instances]`, scale-in held back by `[scaling] scale_in_stabilization`."""
    manifest = ctx.manifest
    stabilization = min(MAX_STABILIZATION, round(manifest.scaling.scale_in_stabilization))
    return V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=V1ObjectMeta(
            name=ctx.hpa_name,
            namespace=ctx.namespace,
            labels=ctx.labels(),
            annotations={"sprout.dev/metric": manifest.scaling.metric},
        ),
        spec=V2HorizontalPodAutoscalerSpec(
            scale_target_ref=V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name=ctx.deployment_name(ctx.live)
            ),
            min_replicas=min_replicas(ctx),
            max_replicas=manifest.instances.max,
            metrics=[metric(ctx)],
            behavior=V2HorizontalPodAutoscalerBehavior(
                scale_down=V2HPAScalingRules(stabilization_window_seconds=stabilization),
                scale_up=V2HPAScalingRules(stabilization_window_seconds=0),
            ),
        ),
    )

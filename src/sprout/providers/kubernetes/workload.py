"""Blue and green as two Deployments, and the disruption budget that keeps a fleet serving during drains."""

from __future__ import annotations

from kubernetes.client import (
    V1Deployment,
    V1DeploymentSpec,
    V1DeploymentStrategy,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodDisruptionBudget,
    V1PodDisruptionBudgetSpec,
    V1RollingUpdateDeployment,
)

from sprout.providers.kubernetes.context import Colour, RenderContext
from sprout.providers.kubernetes.pod import pod_template, seconds


def autoscaled(ctx: RenderContext) -> bool:
    """Whether an HPA owns the live Deployment's replica count."""
    return ctx.manifest.scaling.enabled


def replicas(ctx: RenderContext, colour: Colour) -> int | None:
    """The replica count to write: none for an autoscaled live colour (the HPA owns it), 0 when idle."""
    if colour != ctx.live:
        return 0
    if autoscaled(ctx):
        return None
    return ctx.manifest.instances.initial


def deployment(ctx: RenderContext, colour: Colour, count: int | None = None) -> V1Deployment:
    """One colour's Deployment (at `count` pods when given); changes roll `[deploy] batch_size` at a time."""
    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=V1ObjectMeta(
            name=ctx.deployment_name(colour),
            namespace=ctx.namespace,
            labels=ctx.labels(**{"sprout.dev/color": colour}),
        ),
        spec=V1DeploymentSpec(
            replicas=replicas(ctx, colour) if count is None else count,
            selector=V1LabelSelector(match_labels=ctx.selector(colour)),
            strategy=V1DeploymentStrategy(
                type="RollingUpdate",
                # Never below capacity: surge new pods, remove old ones only once the new are ready.
                rolling_update=V1RollingUpdateDeployment(
                    max_surge=ctx.manifest.deploy.batch_size, max_unavailable=0
                ),
            ),
            progress_deadline_seconds=seconds(ctx.manifest.deploy.health_timeout),
            revision_history_limit=5,
            template=pod_template(ctx, colour),
        ),
    )


def min_available(ctx: RenderContext) -> int:
    """Pods that must stay up during voluntary disruptions (node drains): one fewer than min, at least 1."""
    return max(1, ctx.manifest.instances.min - 1)


def disruption_budget(ctx: RenderContext) -> V1PodDisruptionBudget:
    """A PodDisruptionBudget over both colours: a node drain evicts at most what the fleet can spare."""
    return V1PodDisruptionBudget(
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        metadata=V1ObjectMeta(name=ctx.app, namespace=ctx.namespace, labels=ctx.labels()),
        spec=V1PodDisruptionBudgetSpec(
            min_available=min_available(ctx),
            selector=V1LabelSelector(match_labels=ctx.selector()),
        ),
    )

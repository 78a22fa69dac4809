"""Blue/green on Kubernetes: stage the idle colour, wait until it is ready, switch the selectors.

The story of `sprout k8s deploy`: read which colour the live Service selects; apply the idle colour's
ConfigMap and Deployment at the new version with as many pods as the live colour has; wait (bounded by
`[deploy] health_timeout`) until every one of them is updated and ready; then merge-patch the live
Service's selector to the new colour (the atomic cut-over), the preview Service's to the old one and
the HPA's target to the new Deployment. The old colour keeps running for `sprout k8s rollback`, which
is the same switch the other way; `sprout k8s apply` later scales it to zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sprout.errors import ServiceError, UserError
from sprout.providers.kubernetes.cluster import Change
from sprout.providers.kubernetes.context import COLOUR_LABEL, Colour, Names, RenderContext, other
from sprout.providers.kubernetes.render import serialize, stage

#: Seconds between two looks at a rolling-out Deployment.
POLL_INTERVAL = 2.0


class ClusterApi(Protocol):
    """What a release needs from a cluster (`cluster.Cluster` implements it)."""

    def read(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """One object as the cluster has it now, or None."""
        ...

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str, body: dict[str, Any]
    ) -> None:
        """Merge `body` into one object."""
        ...

    def apply(self, objects: Iterable[Mapping[str, Any]], dry_run: bool = False) -> list[Change]:
        """Server-side apply objects in order."""
        ...

    def live_colour(self, namespace: str, service: str) -> Colour | None:
        """The colour the live Service selects, or None."""
        ...


@dataclass(frozen=True)
class Patch:
    """One merge patch of the switch: which object, and the fields it sets."""

    api_version: str
    kind: str
    name: str
    body: dict[str, Any]


def switch_patches(names: Names, autoscaled: bool, to: Colour) -> list[Patch]:
    """The patches that make `to` live: live Service, preview Service, and the HPA when there is one."""
    patches = [
        Patch("v1", "Service", names.service(), {"spec": {"selector": {COLOUR_LABEL: to}}}),
        Patch(
            "v1", "Service", names.service(preview=True), {"spec": {"selector": {COLOUR_LABEL: other(to)}}}
        ),
    ]
    if autoscaled:
        body = {"spec": {"scaleTargetRef": {"name": names.deployment(to)}}}
        patches.append(Patch("autoscaling/v2", "HorizontalPodAutoscaler", names.hpa, body))
    return patches


def rollout_done(deployment: Mapping[str, Any]) -> bool:
    """Whether a Deployment has all its desired pods on the current template and ready."""
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    desired = spec.get("replicas", 1)
    generation = deployment.get("metadata", {}).get("generation", 0)
    return bool(
        status.get("observedGeneration", 0) >= generation
        and status.get("updatedReplicas", 0) == desired
        and status.get("readyReplicas", 0) == desired
        and status.get("replicas", 0) == desired
    )


def ready_pods(deployment: Mapping[str, Any] | None) -> int:
    """How many ready pods a Deployment has (0 when it does not exist)."""
    if deployment is None:
        return 0
    count: int = (deployment.get("status") or {}).get("readyReplicas", 0)
    return count


class BlueGreen:
    """Releases and rollbacks of one environment by switching selectors."""

    def __init__(
        self,
        cluster: ClusterApi,
        echo: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster = cluster
        self.echo = echo
        self.clock = clock
        self.sleep = sleep

    def _deployment(self, names: Names, colour: Colour) -> dict[str, Any] | None:
        return self.cluster.read("apps/v1", "Deployment", names.deployment(colour), names.namespace)

    def _switch(self, names: Names, autoscaled: bool, to: Colour) -> None:
        for patch in switch_patches(names, autoscaled, to):
            self.cluster.merge_patch(patch.api_version, patch.kind, patch.name, names.namespace, patch.body)
        self.echo(f"switched: Service {names.service()} now selects {to}")

    def wait_ready(self, names: Names, colour: Colour, timeout: float) -> None:
        """Wait until `colour`'s rollout is done, at most `timeout` seconds."""
        deadline = self.clock() + timeout
        while True:
            found = self._deployment(names, colour)
            if found is not None and rollout_done(found):
                return
            if self.clock() >= deadline:
                raise ServiceError(
                    f"k8s deploy: {names.deployment(colour)} was not ready within {timeout:g}s "
                    f"({ready_pods(found)} pods ready); traffic stays on {other(colour)}. "
                    f"See `kubectl -n {names.namespace} describe deployment {names.deployment(colour)}`"
                )
            self.sleep(POLL_INTERVAL)

    def deploy(self, ctx: RenderContext) -> Colour:
        """Release `ctx`'s version to the idle colour and make it live; return the new live colour."""
        names = ctx.names
        live = self.cluster.live_colour(names.namespace, names.service())
        if live is None:
            raise UserError(
                f"k8s deploy: {names.app} is not installed in namespace {names.namespace}; "
                "run `sprout k8s apply` first"
            )
        target = other(live)
        count = max(ctx.manifest.instances.min, ready_pods(self._deployment(names, live)), 1)
        self.echo(f"staging {ctx.version} on {target} with {count} pods ({live} stays live)")
        self.cluster.apply(serialize(stage(ctx, target, count)))
        self.wait_ready(names, target, ctx.manifest.deploy.health_timeout)
        self.echo(f"{names.deployment(target)}: {count} pods ready")
        self._switch(names, ctx.manifest.scaling.enabled, target)
        return target

    def rollback(self, names: Names, autoscaled: bool) -> Colour:
        """Switch back to the other colour if it still has ready pods; return the new live colour."""
        live = self.cluster.live_colour(names.namespace, names.service())
        if live is None:
            raise UserError(f"k8s rollback: {names.app} is not installed in namespace {names.namespace}")
        target = other(live)
        if ready_pods(self._deployment(names, target)) == 0:
            raise UserError(
                f"k8s rollback: {names.deployment(target)} has no ready pods to switch back to "
                "(scaled to zero after the rollback window); deploy the old version instead"
            )
        self._switch(names, autoscaled, target)
        return target

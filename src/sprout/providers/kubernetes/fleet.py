"""The release engine's fleet seam on Kubernetes: one Deployment per colour, the live Service's selector
as the traffic switch (merge patches of the live Service, the preview Service and the HPA's target).

A group is a colour's Deployment; its version is its pods' version label and the end of its rollback
window an annotation on it. Traffic is all-or-nothing (a Service selects one colour), so the strategies that need weights in
between (canary, rolling) are refused up front. Health is the Deployment's rollout status; a removed
group is scaled to zero pods, as `sprout k8s apply` does after the rollback window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sprout.deploy.analysis import Window
from sprout.deploy.fleet import GroupHealth
from sprout.deploy.gate import GateResult
from sprout.errors import SproutError, UserError
from sprout.providers.kubernetes.cluster import Change
from sprout.providers.kubernetes.context import COLOUR_LABEL, COLOURS, Colour, Names, RenderContext, other
from sprout.providers.kubernetes.render import serialize, stage
from sprout.state.models import Group

VERSION_LABEL = "sprout.dev/version"
STANDBY_ANNOTATION = "sprout.dev/standby-until"
BUNDLE_ANNOTATION = "sprout.dev/bundle-sha256"


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


#: A version label to the rendering of that version (bundle, store, image, namespace).
ContextOf = Callable[[str], RenderContext]
#: A version label to its test gate's result, run where the CLI runs (before anything reaches the cluster).
GateOf = Callable[[str], GateResult]


#: What a release on Kubernetes can do: switch the live Service from one colour to the other.
STRATEGIES = ("bluegreen",)


def refusal(strategy: str) -> str:
    """Why `strategy` cannot run on Kubernetes, naming the strategy to use instead."""
    return (
        f"--strategy {strategy}: Kubernetes switches a Service's selector from one colour to the other "
        "and cannot split traffic by weight; use bluegreen"
    )


def release_refusal(command: str) -> str:
    """Why a version with a release command cannot be released on Kubernetes yet, and what to do."""
    return (
        f"kubernetes: the release command `{command}` needs a one-off Job, which Sprout does not "
        "create yet; run it with `kubectl run` and deploy a manifest without [app] release"
    )


class KubernetesFleet:
    """`sprout.deploy.fleet.Fleet` over a cluster's two colour Deployments and their Services."""

    strategies: tuple[str, ...] = STRATEGIES

    def __init__(self, cluster: ClusterApi, names: Names, context_of: ContextOf, gate: GateOf) -> None:
        self.cluster = cluster
        self.names = names
        self.context_of = context_of
        self.gate = gate

    def refusal(self, strategy: str) -> str:
        return refusal(strategy)

    def _deployment(self, colour: Colour) -> dict[str, Any] | None:
        return self.cluster.read("apps/v1", "Deployment", self.names.deployment(colour), self.names.namespace)

    def _live(self) -> Colour | None:
        return self.cluster.live_colour(self.names.namespace, self.names.service())

    def groups(self, app: str, env: str) -> dict[str, Group]:
        live = self._live()
        found: dict[str, Group] = {}
        for colour in COLOURS:
            deployment = self._deployment(colour)
            if deployment is None:
                continue
            replicas = int(deployment.get("spec", {}).get("replicas", 0))
            if replicas == 0:
                continue
            annotations = deployment.get("metadata", {}).get("annotations") or {}
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            version = str(labels[VERSION_LABEL])
            standby = annotations.get(STANDBY_ANNOTATION)
            weight = 100 if colour == live else 0
            found[colour] = Group(colour, version, replicas, weight, float(standby) if standby else None)
        return found

    def bundle_of(self, name: str) -> str | None:
        """The bundle sha256 a colour's pods run (their template's annotation), or None."""
        deployment = self._deployment(_colour(name)) or {}
        annotations = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
        found = (annotations or {}).get(BUNDLE_ANNOTATION)
        return str(found) if found else None

    def set_group(self, app: str, env: str, group: Group) -> None:
        colour = _colour(group.name)
        current = self.groups(app, env).get(colour)
        if current is None or current.version != group.version:
            self.cluster.apply(serialize(stage(self.context_of(group.version), colour, group.capacity)))
        annotations = {STANDBY_ANNOTATION: None if group.standby_until is None else repr(group.standby_until)}
        self._patch(colour, {"metadata": {"annotations": annotations}, "spec": {"replicas": group.capacity}})
        if group.weight > 0:
            self.set_weights(app, env, {group.name: 100})

    def remove_group(self, app: str, env: str, name: str) -> None:
        colour = _colour(name)
        if self._deployment(colour) is not None:
            self._patch(
                colour, {"spec": {"replicas": 0}, "metadata": {"annotations": {STANDBY_ANNOTATION: None}}}
            )

    def set_weights(self, app: str, env: str, weights: Mapping[str, int]) -> None:
        served = [name for name, weight in weights.items() if weight > 0]
        if any(weight not in (0, 100) for weight in weights.values()) or len(served) > 1:
            raise UserError(
                f"kubernetes: weights {dict(weights)} split traffic; a Service selects one colour"
            )
        if not served or served[0] == self._live():
            return
        autoscaled = self.context_of(self.groups(app, env)[served[0]].version).manifest.scaling.enabled
        for patch in switch_patches(self.names, autoscaled, _colour(served[0])):
            self.cluster.merge_patch(
                patch.api_version, patch.kind, patch.name, self.names.namespace, patch.body
            )

    def health(self, app: str, env: str, name: str, since: float) -> GroupHealth:
        deployment = self._deployment(_colour(name))
        desired = int((deployment or {}).get("spec", {}).get("replicas", 0))
        ready = ready_pods(deployment)
        if deployment is not None and rollout_done(deployment):
            return GroupHealth(desired, desired, 0, 0)
        return GroupHealth(desired, min(ready, max(desired - 1, 0)), desired - ready, 0)

    def metrics(self, app: str, env: str) -> dict[str, Mapping[str, Any]]:
        return {}

    def window(
        self, app: str, env: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
    ) -> Window:
        raise UserError(self.refusal("canary"))

    def smoke(self, app: str, env: str, name: str, path: str) -> str | None:
        return (
            f"smoke_path {path}: pods on Kubernetes are checked by their readiness probe on [health] path "
            "only; remove [deploy] smoke_path or make it the health path"
        )

    def release(self, app: str, env: str, version: str, stop: threading.Event | None = None) -> None:
        command = self.context_of(version).manifest.app.release
        if command:
            raise SproutError(release_refusal(command))

    def test(self, app: str, env: str, version: str) -> GateResult:
        return self.gate(version)

    def _patch(self, colour: Colour, body: dict[str, Any]) -> None:
        self.cluster.merge_patch(
            "apps/v1", "Deployment", self.names.deployment(colour), self.names.namespace, body
        )


def _colour(name: str) -> Colour:
    if name == "blue":
        return "blue"
    if name == "green":
        return "green"
    raise UserError(f"kubernetes: group {name!r} is not a colour (blue, green)")

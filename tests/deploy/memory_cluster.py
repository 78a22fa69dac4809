"""An in-memory Kubernetes cluster for the release tests (no cluster runs on this machine): objects by
kind and name, merge patches, server-side apply; a Deployment's pods get ready after a few reads."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from sprout.providers.kubernetes.cluster import Change
from sprout.providers.kubernetes.context import Colour


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """JSON merge patch (RFC 7386) into `target`."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class MemoryCluster:
    """Objects by (kind, name); a Deployment's pods become ready after `ready_after` reads."""

    def __init__(self, objects: Iterable[Mapping[str, Any]], ready_after: int | None = 1) -> None:
        self.objects = {(o["kind"], o["metadata"]["name"]): copy.deepcopy(dict(o)) for o in objects}
        self.ready_after = ready_after
        self.reads: dict[str, int] = {}
        self.log: list[str] = []

    def set_ready(self, name: str, count: int) -> None:
        deployment = self.objects[("Deployment", name)]
        deployment["spec"]["replicas"] = count
        deployment["status"] = {"observedGeneration": 1, "replicas": count, "updatedReplicas": count}
        deployment["status"]["readyReplicas"] = count
        deployment["metadata"]["generation"] = 1

    def read(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, name))
        if found is None:
            return None
        if kind == "Deployment" and "status" not in found:
            self.reads[name] = self.reads.get(name, 0) + 1
            if self.ready_after is not None and self.reads[name] > self.ready_after:
                self.set_ready(name, found["spec"]["replicas"])
        return copy.deepcopy(found)

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str, body: dict[str, Any]
    ) -> None:
        self.log.append(f"patch {kind}/{name}")
        merge(self.objects[(kind, name)], body)

    def apply(self, objects: Iterable[Mapping[str, Any]], dry_run: bool = False) -> list[Change]:
        changes = []
        for obj in objects:
            key = (obj["kind"], obj["metadata"]["name"])
            self.log.append(f"apply {key[0]}/{key[1]}")
            self.objects[key] = copy.deepcopy(dict(obj))
            changes.append(Change(key[0], key[1], "update"))
        return changes

    def live_colour(self, namespace: str, service: str) -> Colour | None:
        found = self.objects.get(("Service", service))
        colour = found["spec"]["selector"]["sprout.dev/color"] if found else None
        return "green" if colour == "green" else "blue" if colour == "blue" else None

    def selector(self, service: str) -> str:
        colour: str = self.objects[("Service", service)]["spec"]["selector"]["sprout.dev/color"]
        return colour

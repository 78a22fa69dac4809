"""The whole set of Kubernetes objects of one environment, assembled from the small builders beside it.

Objects are the official client's models, serialized with `ApiClient.sanitize_for_serialization`, in
the order they can be applied: namespace, RBAC, config, workloads, traffic, scaling.
"""

from __future__ import annotations

from typing import Any

import yaml  # type: ignore[import-untyped]
from kubernetes.client import ApiClient, V1Namespace, V1ObjectMeta

from sprout.providers.kubernetes.autoscaler import autoscaler
from sprout.providers.kubernetes.config import config_map
from sprout.providers.kubernetes.context import COLOURS, DEFAULT_IMAGE, Colour, RenderContext
from sprout.providers.kubernetes.network import ingress, service
from sprout.providers.kubernetes.schedule import cron_job, rbac, scheduled
from sprout.providers.kubernetes.workload import deployment, disruption_budget
from sprout.spec import Manifest


def default_namespace(app: str, env: str) -> str:
    """The namespace of an app environment unless told otherwise: `<app>-<env>`."""
    return f"{app}-{env}"


def namespace_object(ctx: RenderContext) -> V1Namespace:
    """The namespace, held to the `restricted` Pod Security Standard that every pod here meets."""
    return V1Namespace(
        api_version="v1",
        kind="Namespace",
        metadata=V1ObjectMeta(
            name=ctx.namespace,
            labels={**ctx.labels(), "pod-security.kubernetes.io/enforce": "restricted"},
        ),
    )


def build(ctx: RenderContext, create_namespace: bool = True) -> list[Any]:
    """The client models of `ctx`, in apply order."""
    models: list[Any] = []
    if create_namespace:
        models.append(namespace_object(ctx))
    schedules = scheduled(ctx)
    if schedules:
        models.extend(rbac(ctx))
    models.extend(config_map(ctx, colour) for colour in COLOURS)
    models.extend(deployment(ctx, colour) for colour in COLOURS)
    models.extend([service(ctx), service(ctx, preview=True), disruption_budget(ctx)])
    if ctx.manifest.scaling.enabled:
        models.append(autoscaler(ctx))
    models.append(ingress(ctx))
    models.extend(cron_job(ctx, number, entry) for number, entry in schedules)
    return models


def stage(ctx: RenderContext, colour: Colour, count: int) -> list[Any]:
    """One colour's ConfigMap and Deployment at `count` pods: a blue/green release's first step."""
    return [config_map(ctx, colour), deployment(ctx, colour, count)]


def serialize(models: list[Any]) -> list[dict[str, Any]]:
    """Client models as plain JSON-ready dicts (camelCase keys, unset fields dropped)."""
    with ApiClient() as api:
        return [api.sanitize_for_serialization(model) for model in models]


def render(
    manifest: Manifest,
    env: str,
    version_label: str,
    bundle_sha256: str,
    store_url: str,
    image: str = DEFAULT_IMAGE,
    namespace: str | None = None,
    *,
    live: Colour = "blue",
    secret_name: str | None = None,
    create_namespace: bool = True,
) -> list[dict[str, Any]]:
    """The Kubernetes objects that run `manifest` as environment `env` at one version (JSON-ready dicts)."""
    ctx = RenderContext(
        manifest,
        env,
        version_label,
        bundle_sha256,
        store_url,
        image,
        namespace or default_namespace(manifest.app.name, env),
        live,
        secret_name,
    )
    return serialize(build(ctx, create_namespace))


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """A safe dumper that writes multi-line strings (the spec JSON) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML, one object per document, keys in the order Kubernetes writes them."""
    text: str = yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=True
    )
    return text

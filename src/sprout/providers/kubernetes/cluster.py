"""Talking to a cluster: connect from a kubeconfig, server-side apply rendered objects, diff them.

Everything goes through the official client's `DynamicClient` with server-side apply (field manager
`sprout`), so Kubernetes itself merges, validates and defaults; `diff` is the same apply as a dry run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kubernetes.client import ApiClient, Configuration, CoreV1Api, VersionApi
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException, load_incluster_config, new_client_from_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError as K8sNotFound
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from urllib3.exceptions import HTTPError

from sprout.errors import ServiceError, UserError
from sprout.providers.kubernetes.context import COLOUR_LABEL, COLOURS, Colour

FIELD_MANAGER = "sprout"
#: Seconds to wait for the API server before calling it unreachable.
CONNECT_TIMEOUT = 5.0
#: Server-managed metadata that says nothing about the desired state.
_VOLATILE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class Change:
    """What applying one object does (or did): create it, update the listed fields, or nothing."""

    kind: str
    name: str
    action: Action
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        mark = {"create": "+", "update": "~", "unchanged": "="}[self.action]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{mark} {self.kind}/{self.name}: {self.action}{detail}"


def kubeconfig_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The kubeconfig to use: `--kubeconfig`, the first file in $KUBECONFIG, or ~/.kube/config if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise UserError(f"kubernetes: kubeconfig {explicit} does not exist (check --kubeconfig)")
        return explicit
    for entry in environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry and Path(entry).expanduser().is_file():
            return Path(entry).expanduser()
    home = environ.get("HOME")
    default = Path(home) / ".kube" / "config" if home else None
    return default if default is not None and default.is_file() else None


def connect(kubeconfig: Path | None, context: str | None, environ: Mapping[str, str]) -> ApiClient:
    """An API client for the cluster named by the kubeconfig (or the one this pod runs in), proven reachable."""
    path = kubeconfig_path(kubeconfig, environ)
    try:
        if path is not None:
            api: ApiClient = new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(path), context=context, persist_config=False
            )
        elif environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = Configuration()
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            api = ApiClient(configuration)
        else:
            raise UserError(
                "kubernetes: no cluster configured (no --kubeconfig, no $KUBECONFIG file, no ~/.kube/config, "
                "not running in a pod); point --kubeconfig at a cluster's kubeconfig, or use "
                "`sprout k8s render` to write the objects for kubectl"
            )
    except ConfigException as exc:
        raise UserError(f"kubernetes: cannot use kubeconfig {path}: {exc}") from exc
    host = api.configuration.host
    try:
        VersionApi(api).get_code(_request_timeout=CONNECT_TIMEOUT)
    except (HTTPError, OSError, ApiException) as exc:
        api.close()  # type: ignore[no-untyped-call]
        raise ServiceError(
            f"kubernetes: the cluster at {host} is not reachable ({type(exc).__name__}); "
            "check the kubeconfig's context and that the API server is up"
        ) from exc
    return api


def changed_fields(live: Any, desired: Any, prefix: str = "") -> list[str]:
    """Dotted paths where `desired` differs from `live` (lists compare whole)."""
    if isinstance(live, dict) and isinstance(desired, dict):
        paths: list[str] = []
        for key in sorted(set(live) | set(desired)):
            if prefix == "metadata" and key in _VOLATILE:
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.extend(changed_fields(live.get(key), desired.get(key), path))
        return paths
    return [] if live == desired else [prefix]


def keep_replicas(obj: Mapping[str, Any], live: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj` with the live replica count when it leaves replicas to the HPA.

    Server-side apply removes a field its manager stops sending; were `replicas` left out after Sprout
    once set it (a staged colour that became live), Kubernetes would reset it to 1 under the HPA.
    """
    if obj["kind"] != "Deployment" or "replicas" in obj["spec"]:
        return obj
    count = live.get("spec", {}).get("replicas")
    if count is None:
        return obj
    return {**obj, "spec": {**obj["spec"], "replicas": count}}


def api_message(exc: ApiException) -> str:
    """The API server's own words for a failed call (its Status message), else status and reason."""
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{exc.status} {exc.reason}: {message}" if message else f"{exc.status} {exc.reason}"


class Cluster:
    """One cluster, reached through a connected API client."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]

    def _resource(self, obj: Mapping[str, Any]) -> Any:
        try:
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError as exc:
            raise ServiceError(
                f"kubernetes: the cluster does not serve {obj['kind']} ({obj['apiVersion']}); "
                "it may be older than the 1.30 Sprout renders for"
            ) from exc

    def _get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        try:
            found = self.dynamic.get(  # type: ignore[no-untyped-call]
                self._resource(obj), name=meta["name"], namespace=meta.get("namespace")
            )
        except K8sNotFound:
            return None
        except ApiException as exc:
            raise ServiceError(
                f"kubernetes: reading {obj['kind']}/{meta['name']}: {api_message(exc)}"
            ) from exc
        live: dict[str, Any] = found.to_dict()
        return live

    def _apply(self, obj: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
        meta = obj["metadata"]
        result = self.dynamic.server_side_apply(  # type: ignore[no-untyped-call]
            self._resource(obj),
            body=dict(obj),
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            dry_run="All" if dry_run else None,
        )
        applied: dict[str, Any] = result.to_dict()
        return applied

    def apply(self, objects: Iterable[Mapping[str, Any]], dry_run: bool = False) -> list[Change]:
        """Server-side apply each object in order (a dry run changes nothing); what each did."""
        changes: list[Change] = []
        for obj in objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            live = self._get(obj)
            if live is None and dry_run:
                # A dry run cannot create the namespace the rest would go into: report, do not ask.
                changes.append(Change(kind, name, "create"))
                continue
            if live is not None:
                obj = keep_replicas(obj, live)
            try:
                result = self._apply(obj, dry_run)
            except ApiException as exc:
                raise ServiceError(f"kubernetes apply: {kind}/{name}: {api_message(exc)}") from exc
            if live is None:
                changes.append(Change(kind, name, "create"))
                continue
            live.pop("status", None)
            result.pop("status", None)
            fields = tuple(changed_fields(live, result))
            changes.append(Change(kind, name, "update" if fields else "unchanged", fields))
        return changes

    def read(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """One object as the cluster has it now, or None."""
        ref = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}}
        return self._get(ref)

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str, body: dict[str, Any]
    ) -> None:
        """Merge `body` into one object (only the fields it names change)."""
        ref = {"apiVersion": api_version, "kind": kind}
        try:
            self.dynamic.patch(  # type: ignore[no-untyped-call]
                self._resource(ref),
                body=body,
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                field_manager=FIELD_MANAGER,
            )
        except ApiException as exc:
            raise ServiceError(f"kubernetes: patching {kind}/{name}: {api_message(exc)}") from exc

    def live_colour(self, namespace: str, service: str) -> Colour | None:
        """The colour the live Service selects now, or None when it does not exist yet."""
        try:
            found = CoreV1Api(self.api).read_namespaced_service(service, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ServiceError(
                f"kubernetes: cannot read Service {namespace}/{service}: {api_message(exc)}"
            ) from exc
        selector = (found.spec.selector if found.spec else None) or {}
        colour = selector.get(COLOUR_LABEL)
        for known in COLOURS:
            if colour == known:
                return known
        return None

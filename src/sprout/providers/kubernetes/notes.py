"""What a rendering cannot carry over from the manifest, said plainly (printed by `sprout k8s render`)."""

from __future__ import annotations

from urllib.parse import urlparse

from sprout.providers.kubernetes.autoscaler import (
    IN_FLIGHT_METRIC,
    MAX_STABILIZATION,
    P95_METRIC,
    REQUESTS_METRIC,
)
from sprout.providers.kubernetes.config import secret_names
from sprout.providers.kubernetes.context import RenderContext
from sprout.providers.kubernetes.network import tls_secret


def notes(ctx: RenderContext) -> list[str]:
    """Caveats of this rendering: needed cluster add-ons and manifest settings with no Kubernetes form."""
    manifest = ctx.manifest
    scaling = manifest.scaling
    found: list[str] = []
    resources = manifest.resources
    if resources.database.url is None:
        found.append(
            f"resources.database: engine {resources.database.engine!r} without a url; pods have no shared disk, "
            "so set [resources.database] url to a database every pod reaches (DATABASE_URL is left unset)"
        )
    if resources.sessions.url is None:
        found.append(
            f"resources.sessions: engine {resources.sessions.engine!r} without a url; Sprout does not run session "
            "stores on Kubernetes, so set [resources.sessions] url (SESSION_STORE_URL is left unset)"
        )
    for table, name in (("database", "DATABASE_URL"), ("sessions", "SESSION_STORE_URL")):
        if name in secret_names(manifest):
            found.append(
                f"resources.{table}.password: the Secret's {name} is the whole url with its password"
            )
    if urlparse(ctx.store_url).scheme != "s3":
        found.append(
            f"artifact store {ctx.store_url!r} is a folder: pods can only fetch bundles from it if it is mounted "
            "at the same path; push to an s3:// store instead"
        )
    if scaling.enabled:
        adapter = {
            "requests_per_instance": f"Pods metric {REQUESTS_METRIC!r}",
            "concurrency": f"Pods metric {IN_FLIGHT_METRIC!r}",
            "p95_latency": f"Object metric {P95_METRIC!r} on Service {ctx.app!r}",
        }.get(scaling.metric)
        if adapter is None:
            found.append("scaling: the cpu metric needs metrics-server in the cluster")
        else:
            found.append(
                f"scaling: metric {scaling.metric!r} becomes the {adapter}; the cluster needs a custom metrics "
                "adapter (e.g. prometheus-adapter) that publishes it"
            )
        if manifest.instances.min < 1:
            found.append(
                "scaling: HPA minReplicas is at least 1 (instances.min = 0 needs the alpha HPAScaleToZero)"
            )
        if scaling.scale_in_stabilization > MAX_STABILIZATION:
            found.append(f"scaling.scale_in_stabilization: capped at {MAX_STABILIZATION}s, the HPA's maximum")
        if scaling.step:
            found.append("scaling.step: the HPA has no step policies; only target tracking is rendered")
        if scaling.predictive:
            found.append("scaling.predictive: the HPA does not forecast; not rendered")
        if scaling.cooldown > 0:
            found.append("scaling.cooldown: the HPA paces scale-in with its stabilization window only")
        if scaling.warmup != 30.0 or scaling.tolerance != 0.1:
            found.append(
                "scaling.warmup/tolerance: cluster-wide kube-controller-manager settings on Kubernetes "
                "(--horizontal-pod-autoscaler-cpu-initialization-period, --horizontal-pod-autoscaler-tolerance)"
            )
    elif scaling.schedule:
        found.append(
            "scaling.schedule: scheduled actions patch the HPA, and [scaling] enabled = false renders none"
        )
    for number, entry in enumerate(scaling.schedule, start=1):
        where = f"scaling.schedule[{number - 1}]"
        if entry.at is not None:
            found.append(f"{where}: one-off `at` actions have no CronJob form; not rendered")
        elif entry.min is None and entry.max is None:
            found.append(
                f"{where}: only `desired` is set, and an HPA has no desired count to patch; not rendered"
            )
        elif entry.desired is not None:
            found.append(
                f"{where}: `desired` is ignored (the HPA owns the replica count); min/max are patched"
            )
        if entry.duration is not None:
            found.append(
                f"{where}: `duration` is not rendered; the bounds hold until the next scheduled action"
            )
    if manifest.router.cache_static:
        found.append("router.cache_static: the edge cache is the ingress controller's job on Kubernetes")
    if manifest.router.default_route:
        found.append("router.default_route: the default backend is the ingress controller's; not rendered")
    tls = manifest.tls
    if tls is not None and manifest.kubernetes.cert_manager_issuer is None:
        secret = tls_secret(ctx)
        if tls.from_files:
            found.append(
                f"tls: create Secret {secret!r} in namespace {ctx.namespace!r} with "
                f"`kubectl create secret tls {secret} --cert {tls.cert} --key {tls.key}`"
            )
        else:
            found.append(
                f"tls: set [kubernetes] cert_manager_issuer for cert-manager to obtain Secret {secret!r} by ACME, "
                "or create it yourself (the cluster, not Sprout, answers the ACME challenges)"
            )
    if tls is not None and tls.hsts:
        found.append(
            "tls.hsts: not rendered; set it with your ingress controller (ingress-nginx: hsts in its ConfigMap)"
        )
    if secret_names(manifest):
        names = ", ".join(secret_names(manifest))
        found.append(
            f"secrets: create Secret {ctx.secret!r} in namespace {ctx.namespace!r} with keys {names}"
        )
    return found

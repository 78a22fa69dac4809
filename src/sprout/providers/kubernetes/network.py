"""Traffic: the live Service (its selector is the blue/green switch), the preview Service, the Ingress."""

from __future__ import annotations

from kubernetes.client import (
    V1HTTPIngressPath,
    V1HTTPIngressRuleValue,
    V1Ingress,
    V1IngressBackend,
    V1IngressRule,
    V1IngressServiceBackend,
    V1IngressSpec,
    V1IngressTLS,
    V1ObjectMeta,
    V1Service,
    V1ServiceBackendPort,
    V1ServicePort,
    V1ServiceSpec,
)

from sprout.providers.kubernetes.context import Colour, RenderContext, other


def service_name(ctx: RenderContext, preview: bool = False) -> str:
    """The live Service's name, or the preview Service's."""
    return ctx.names.service(preview)


def service(ctx: RenderContext, preview: bool = False) -> V1Service:
    """A ClusterIP Service on port 80 selecting one colour; patching the selector moves all traffic at once."""
    colour: Colour = other(ctx.live) if preview else ctx.live
    return V1Service(
        api_version="v1",
        kind="Service",
        metadata=V1ObjectMeta(
            name=service_name(ctx, preview),
            namespace=ctx.namespace,
            labels=ctx.labels(**{"sprout.dev/role": "preview" if preview else "live"}),
        ),
        spec=V1ServiceSpec(
            type="ClusterIP",
            selector=ctx.selector(colour),
            ports=[V1ServicePort(name="http", port=80, target_port="http", protocol="TCP")],
        ),
    )


def ingress(ctx: RenderContext) -> V1Ingress:
    """Host-based routing for `[router] hosts` to the live Service (the cluster's default IngressClass)."""
    backend = V1IngressBackend(
        service=V1IngressServiceBackend(name=service_name(ctx), port=V1ServiceBackendPort(name="http"))
    )
    rules = [
        V1IngressRule(
            host=host,
            http=V1HTTPIngressRuleValue(
                paths=[V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)]
            ),
        )
        for host in ctx.manifest.hosts
    ]
    # `[router] max_body`, as ingress-nginx reads it; other controllers have their own knob.
    annotations = {"nginx.ingress.kubernetes.io/proxy-body-size": str(ctx.manifest.router.max_body)}
    tls = None
    if ctx.manifest.tls is not None:
        tls = [V1IngressTLS(hosts=list(ctx.manifest.hosts), secret_name=tls_secret(ctx))]
        issuer = ctx.manifest.kubernetes.cert_manager_issuer
        if issuer is not None:
            # cert-manager's ingress-shim obtains the certificate by ACME and keeps the Secret renewed.
            annotations["cert-manager.io/cluster-issuer"] = issuer
    return V1Ingress(
        api_version="networking.k8s.io/v1",
        kind="Ingress",
        metadata=V1ObjectMeta(
            name=ctx.app, namespace=ctx.namespace, labels=ctx.labels(), annotations=annotations
        ),
        spec=V1IngressSpec(rules=rules, tls=tls),
    )


def tls_secret(ctx: RenderContext) -> str:
    """The Secret holding the Ingress's certificate and key."""
    return ctx.manifest.kubernetes.tls_secret or f"{ctx.app}-tls"

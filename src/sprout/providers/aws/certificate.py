"""The load balancer's certificate: the ARN `[aws] certificate_arn` names, or a DNS-validated one the stack creates."""

from __future__ import annotations

from troposphere import Ref, Template
from troposphere.certificatemanager import Certificate, DomainValidationOption

from sprout.errors import UserError
from sprout.providers.aws.context import RenderContext

CERTIFICATE = "Certificate"


def zone_hosts(ctx: RenderContext) -> list[str]:
    """The `[router] hosts` that belong to `[aws] hosted_zone` (wildcards excluded)."""
    zone = (ctx.manifest.aws.hosted_zone or "").rstrip(".")
    if not zone:
        return []
    return [
        h
        for h in ctx.manifest.router.hosts
        if not h.startswith("*") and (h == zone or h.endswith("." + zone))
    ]


def add_certificate(t: Template, ctx: RenderContext) -> None:
    """With `[aws] create_certificate`, an ACM certificate for the zone's hosts, validated in that zone."""
    aws = ctx.manifest.aws
    if not aws.create_certificate:
        return
    hosts = zone_hosts(ctx)
    if not hosts:
        raise UserError(
            f"[aws] create_certificate: none of [router] hosts is in hosted_zone {aws.hosted_zone!r}; "
            "add the hosts the certificate is for"
        )
    # CloudFormation writes the validation CNAMEs into the zone and waits until ACM has issued it.
    t.add_resource(
        Certificate(
            CERTIFICATE,
            DomainName=hosts[0],
            SubjectAlternativeNames=hosts[1:],
            ValidationMethod="DNS",
            DomainValidationOptions=[
                DomainValidationOption(DomainName=host, HostedZoneId=aws.hosted_zone_id) for host in hosts
            ],
            Tags=ctx.tags(),
        )
    )


def certificate_arn(ctx: RenderContext) -> object | None:
    """The load balancer's certificate (an ARN or a reference to the created one), if it has one."""
    aws = ctx.manifest.aws
    if aws.create_certificate:
        ref: object = Ref(CERTIFICATE)
        return ref
    return aws.certificate_arn


def cdn_certificate_arn(ctx: RenderContext) -> object | None:
    """CloudFront's certificate: the us-east-1 ARN given, or the created one when the stack is in us-east-1."""
    aws = ctx.manifest.aws
    if aws.cdn_certificate_arn:
        return aws.cdn_certificate_arn
    if aws.create_certificate and aws.region == "us-east-1":
        ref: object = Ref(CERTIFICATE)
        return ref
    return None

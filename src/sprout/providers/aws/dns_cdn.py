"""The edge: optional CloudFront in front of the ALB, and Route53 alias records for the app's hosts."""

from __future__ import annotations

from troposphere import GetAtt, Template
from troposphere.cloudfront import (
    CustomOriginConfig,
    DefaultCacheBehavior,
    Distribution,
    DistributionConfig,
    Origin,
    ViewerCertificate,
)
from troposphere.route53 import AliasTarget, RecordSetType

from sprout.providers.aws.certificate import cdn_certificate_arn, zone_hosts
from sprout.providers.aws.context import RenderContext
from sprout.providers.aws.loadbalancer import LoadBalancerRefs
from sprout.providers.aws.skips import skip_checks

#: AWS managed policies: cache by the origin's Cache-Control (with query strings), forward all viewer headers.
CACHE_POLICY_ORIGIN_HEADERS = "4cc15a8a-d715-48a4-82b8-cc0b614638fe"
ORIGIN_REQUEST_ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
#: The hosted zone id every CloudFront alias target uses.
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"


def cdn_serves_hosts(ctx: RenderContext) -> bool:
    """Whether CloudFront can answer for the hosts: it needs their certificate in us-east-1."""
    aws = ctx.manifest.aws
    return aws.cdn and cdn_certificate_arn(ctx) is not None and bool(zone_hosts(ctx))


def add_cdn(t: Template, ctx: RenderContext, lb: LoadBalancerRefs) -> Distribution | None:
    """A CloudFront distribution with the ALB as origin, honouring the app's Cache-Control."""
    if not ctx.manifest.aws.cdn:
        return None
    extra: dict[str, object] = {}
    if cdn_serves_hosts(ctx):
        extra = {
            "Aliases": zone_hosts(ctx),
            "ViewerCertificate": ViewerCertificate(
                AcmCertificateArn=cdn_certificate_arn(ctx),
                SslSupportMethod="sni-only",
                MinimumProtocolVersion="TLSv1.2_2021",
            ),
        }
    cdn = t.add_resource(
        Distribution(
            "Cdn",
            DistributionConfig=DistributionConfig(
                Enabled=True,
                Comment=f"{ctx.stack_name}: static caching in front of the load balancer",
                HttpVersion="http2and3",
                PriceClass="PriceClass_100",
                Origins=[
                    Origin(
                        Id="alb",
                        DomainName=GetAtt(lb.alb, "DNSName"),
                        CustomOriginConfig=CustomOriginConfig(
                            OriginProtocolPolicy="https-only" if ctx.manifest.aws.https else "http-only",
                            OriginSSLProtocols=["TLSv1.2"],
                        ),
                    )
                ],
                DefaultCacheBehavior=DefaultCacheBehavior(
                    TargetOriginId="alb",
                    ViewerProtocolPolicy="redirect-to-https",
                    AllowedMethods=["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
                    CachedMethods=["GET", "HEAD"],
                    Compress=True,
                    CachePolicyId=CACHE_POLICY_ORIGIN_HEADERS,
                    OriginRequestPolicyId=ORIGIN_REQUEST_ALL_VIEWER,
                ),
                **extra,
            ),
            Tags=ctx.tags(),
        )
    )
    skip_checks(
        cdn,
        {
            "CKV_AWS_68": "a WAF web ACL is billed per month and rule; attach one to the distribution if needed",
            "CKV_AWS_86": "the load balancer behind it logs every request that reaches the app",
        },
    )
    return cdn


def add_dns(t: Template, ctx: RenderContext, lb: LoadBalancerRefs, cdn: Distribution | None) -> None:
    """An A alias per host in the hosted zone, to CloudFront when it serves the hosts, else to the ALB."""
    zone = (ctx.manifest.aws.hosted_zone or "").rstrip(".")
    for i, host in enumerate(zone_hosts(ctx), start=1):
        if cdn is not None and cdn_serves_hosts(ctx):
            target = AliasTarget(DNSName=GetAtt(cdn, "DomainName"), HostedZoneId=CLOUDFRONT_ZONE_ID)
        else:
            target = AliasTarget(
                DNSName=GetAtt(lb.alb, "DNSName"),
                HostedZoneId=GetAtt(lb.alb, "CanonicalHostedZoneID"),
                EvaluateTargetHealth=True,
            )
        t.add_resource(
            RecordSetType(
                f"HostRecord{i}", HostedZoneName=f"{zone}.", Name=host, Type="A", AliasTarget=target
            )
        )

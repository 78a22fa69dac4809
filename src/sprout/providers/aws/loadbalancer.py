"""The Application Load Balancer: one listener forwarding to two weighted target groups, blue and green."""

from __future__ import annotations

import math
from dataclasses import dataclass

from troposphere import GetAtt, Ref, Template
from troposphere.elasticloadbalancingv2 import (
    Action,
    Certificate,
    ForwardConfig,
    Listener,
    LoadBalancer,
    LoadBalancerAttributes,
    Matcher,
    RedirectConfig,
    TargetGroup,
    TargetGroupAttribute,
    TargetGroupTuple,
)

from sprout.providers.aws.accesslogs import access_log_prefix, add_access_log_bucket
from sprout.providers.aws.certificate import certificate_arn
from sprout.providers.aws.context import APP_PORT, COLOURS, Colour, RenderContext, title
from sprout.providers.aws.network import Network
from sprout.providers.aws.security import SecurityGroups
from sprout.providers.aws.skips import skip_checks

#: The ELB limits a health check must stay within (seconds / counts).
INTERVAL_RANGE = (5, 300)
TIMEOUT_RANGE = (2, 120)
THRESHOLD_RANGE = (2, 10)
DRAIN_RANGE = (0, 3600)


@dataclass(frozen=True)
class LoadBalancerRefs:
    """The ALB, the listener whose weights a deploy moves, and a target group per colour."""

    alb: LoadBalancer
    listener: Listener
    target_groups: dict[Colour, TargetGroup]


def _clamp(value: float, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], math.ceil(value)))


def health_check(ctx: RenderContext) -> dict[str, object]:
    """Target-group health check properties from `[health]`, clamped to what ELB accepts."""
    health = ctx.manifest.health
    interval = _clamp(health.interval, INTERVAL_RANGE)
    timeout = min(_clamp(health.timeout, TIMEOUT_RANGE), interval - 1)
    return {
        "HealthCheckEnabled": True,
        "HealthCheckPath": health.path,
        "HealthCheckProtocol": "HTTP",
        "HealthCheckIntervalSeconds": interval,
        "HealthCheckTimeoutSeconds": timeout,
        "HealthyThresholdCount": _clamp(health.healthy_threshold, THRESHOLD_RANGE),
        "UnhealthyThresholdCount": _clamp(health.unhealthy_threshold, THRESHOLD_RANGE),
        "Matcher": Matcher(HttpCode="200-399"),
    }


def weights(live: Colour) -> dict[Colour, int]:
    """Listener weights with all traffic on `live`."""
    return {colour: 100 if colour == live else 0 for colour in COLOURS}


def add_load_balancer(
    t: Template, ctx: RenderContext, network: Network, groups: SecurityGroups
) -> LoadBalancerRefs:
    """Create the ALB (with access logs), the two target groups and the listener(s)."""
    logs, logs_policy = add_access_log_bucket(t, ctx)
    attributes = {
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": Ref(logs),
        "access_logs.s3.prefix": access_log_prefix(ctx),
    }
    alb = t.add_resource(
        LoadBalancer(
            "LoadBalancer",
            DependsOn=logs_policy.title,
            Type="application",
            Scheme="internet-facing",
            Subnets=network.public_subnets,
            SecurityGroups=[GetAtt(groups.alb, "GroupId")],
            LoadBalancerAttributes=[LoadBalancerAttributes(Key=k, Value=v) for k, v in attributes.items()],
            Tags=ctx.tags(),
        )
    )
    drain = _clamp(ctx.manifest.deploy.drain, DRAIN_RANGE)
    target_groups: dict[Colour, TargetGroup] = {}
    for colour in COLOURS:
        target_groups[colour] = t.add_resource(
            TargetGroup(
                f"{title(colour)}TargetGroup",
                VpcId=network.vpc,
                Protocol="HTTP",
                Port=APP_PORT,
                TargetType="instance",
                TargetGroupAttributes=[
                    TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value=str(drain)),
                    TargetGroupAttribute(
                        Key="load_balancing.algorithm.type", Value="least_outstanding_requests"
                    ),
                ],
                Tags=ctx.tags(**{"sprout:colour": colour}),
                **health_check(ctx),
            )
        )
    forward = Action(
        Type="forward",
        ForwardConfig=ForwardConfig(
            TargetGroups=[
                TargetGroupTuple(TargetGroupArn=Ref(target_groups[colour]), Weight=weight)
                for colour, weight in weights(ctx.live).items()
            ]
        ),
    )
    certificate = certificate_arn(ctx)
    if certificate is not None:
        listener = t.add_resource(
            Listener(
                "HttpsListener",
                LoadBalancerArn=Ref(alb),
                Port=443,
                Protocol="HTTPS",
                SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                Certificates=[Certificate(CertificateArn=certificate)],
                DefaultActions=[forward],
            )
        )
        if ctx.manifest.aws.http_redirect:
            t.add_resource(
                Listener(
                    "HttpListener",
                    LoadBalancerArn=Ref(alb),
                    Port=80,
                    Protocol="HTTP",
                    DefaultActions=[
                        Action(
                            Type="redirect",
                            RedirectConfig=RedirectConfig(
                                Protocol="HTTPS", Port="443", StatusCode="HTTP_301"
                            ),
                        )
                    ],
                )
            )
    else:
        listener = t.add_resource(
            Listener(
                "HttpListener", LoadBalancerArn=Ref(alb), Port=80, Protocol="HTTP", DefaultActions=[forward]
            )
        )
        reason = "no certificate yet: plain HTTP until [aws] certificate_arn or create_certificate gives one"
        skip_checks(listener, {"CKV_AWS_2": reason, "CKV_AWS_103": reason})
    return LoadBalancerRefs(alb=alb, listener=listener, target_groups=target_groups)

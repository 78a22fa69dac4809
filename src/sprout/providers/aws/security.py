"""Security groups: the internet reaches only the ALB, only the ALB reaches instances, only instances the data."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Template
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress

from sprout.providers.aws.context import APP_PORT, RenderContext
from sprout.providers.aws.local import is_local_url
from sprout.providers.aws.network import Network
from sprout.providers.aws.skips import skip_checks

CACHE_PORTS = {"memcached": 11211, "redis": 6379}
DB_PORTS = {"mysql": 3306, "postgres": 5432}


@dataclass(frozen=True)
class SecurityGroups:
    """The groups' references; `cache` and `database` exist only when those resources do."""

    alb: SecurityGroup
    instances: SecurityGroup
    cache: SecurityGroup | None
    database: SecurityGroup | None


def add_security_groups(t: Template, ctx: RenderContext, network: Network) -> SecurityGroups:
    """Create the groups and the ingress rules between them."""
    alb = t.add_resource(
        SecurityGroup(
            "LoadBalancerSecurityGroup",
            GroupDescription=f"{ctx.stack_name}: HTTP(S) from anywhere to the load balancer",
            VpcId=network.vpc,
            SecurityGroupIngress=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "CidrIp": "0.0.0.0/0",
                    "Description": description,
                }
                for port, description in listen_ports(ctx).items()
            ],
            Tags=ctx.tags(),
        )
    )
    if 80 in listen_ports(ctx):
        skip_checks(alb, {"CKV_AWS_260": listen_ports(ctx)[80]})
    instances = t.add_resource(
        SecurityGroup(
            "InstanceSecurityGroup",
            GroupDescription=f"{ctx.stack_name}: the app port, from the load balancer only",
            VpcId=network.vpc,
            SecurityGroupIngress=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": APP_PORT,
                    "ToPort": APP_PORT,
                    "SourceSecurityGroupId": GetAtt(alb, "GroupId"),
                    "Description": "the app port, from the load balancer",
                }
            ],
            Tags=ctx.tags(),
        )
    )
    resources = ctx.manifest.resources
    cache = None
    if needs_cache(ctx):
        cache = _inner(t, ctx, network, instances, "Cache", CACHE_PORTS[resources.sessions.engine])
    database = None
    if needs_database(ctx):
        database = _inner(t, ctx, network, instances, "Database", DB_PORTS[resources.database.engine])
    return SecurityGroups(alb=alb, instances=instances, cache=cache, database=database)


def listen_ports(ctx: RenderContext) -> dict[int, str]:
    """The ports the world reaches the load balancer on: 443 with a certificate (80 only to redirect)."""
    aws = ctx.manifest.aws
    if not aws.https:
        return {80: "HTTP from anywhere (no certificate: set [aws] certificate_arn or create_certificate)"}
    ports = {443: "HTTPS from anywhere"}
    if aws.http_redirect:
        ports[80] = "HTTP from anywhere, answered only with a redirect to HTTPS"
    return ports


def _inner(
    t: Template, ctx: RenderContext, network: Network, instances: SecurityGroup, name: str, port: int
) -> SecurityGroup:
    """A group for a data service that admits the instances on `port` and nothing else."""
    group = t.add_resource(
        SecurityGroup(
            f"{name}SecurityGroup",
            GroupDescription=f"{ctx.stack_name}: {name.lower()} port {port}, from the instances only",
            VpcId=network.vpc,
            Tags=ctx.tags(),
        )
    )
    t.add_resource(
        SecurityGroupIngress(
            f"{name}FromInstances",
            GroupId=GetAtt(group, "GroupId"),
            IpProtocol="tcp",
            FromPort=port,
            ToPort=port,
            SourceSecurityGroupId=GetAtt(instances, "GroupId"),
            Description=f"{name.lower()} port {port}, from the instances",
        )
    )
    return group


def needs_cache(ctx: RenderContext) -> bool:
    """Whether the stack holds an ElastiCache session store (memcached or redis, unless an external url)."""
    sessions = ctx.manifest.resources.sessions
    return sessions.engine in CACHE_PORTS and (sessions.url is None or is_local_url(sessions.url))


def needs_database(ctx: RenderContext) -> bool:
    """Whether the stack holds an RDS database (mysql or postgres, unless an external url)."""
    database = ctx.manifest.resources.database
    return database.engine in DB_PORTS and (database.url is None or is_local_url(database.url))

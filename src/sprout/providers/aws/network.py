"""The network: a VPC with public and private subnets in two zones, or the user's existing one."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSObject, GetAZs, Ref, Select, Sub, Template
from troposphere.ec2 import (
    EIP,
    VPC,
    InternetGateway,
    NatGateway,
    Route,
    RouteTable,
    Subnet,
    SubnetRouteTableAssociation,
    VPCEndpoint,
    VPCGatewayAttachment,
)

from sprout.errors import UserError
from sprout.providers.aws.context import ZONE_COUNT, RenderContext

VPC_CIDR = "10.0.0.0/16"


@dataclass(frozen=True)
class Network:
    """Where everything is placed: the VPC, the ALB's subnets and the instances' (and data's) subnets."""

    vpc: object
    public_subnets: list[object]
    private_subnets: list[object]
    zones: list[object]


def add_network(t: Template, ctx: RenderContext) -> Network:
    """Use `[aws] vpc_id`/`subnets` when given, else create a two-zone VPC; return the references."""
    aws = ctx.manifest.aws
    if aws.vpc_id or aws.subnets:
        return _existing(aws.vpc_id, aws.subnets)
    return _created(t, ctx)


def _existing(vpc_id: str | None, subnets: list[str]) -> Network:
    if vpc_id is None or len(subnets) < ZONE_COUNT:
        raise UserError(
            "[aws]: an existing network needs vpc_id and at least two subnets (one per zone), "
            f"got vpc_id={vpc_id!r} and {len(subnets)} subnet(s); give both or neither"
        )
    ids: list[object] = list(subnets)
    return Network(vpc=vpc_id, public_subnets=ids, private_subnets=ids, zones=[])


def _created(t: Template, ctx: RenderContext) -> Network:
    vpc = t.add_resource(
        VPC("Vpc", CidrBlock=VPC_CIDR, EnableDnsHostnames=True, EnableDnsSupport=True, Tags=ctx.tags())
    )
    gateway = t.add_resource(InternetGateway("InternetGateway", Tags=ctx.tags()))
    attachment = t.add_resource(
        VPCGatewayAttachment("GatewayAttachment", VpcId=Ref(vpc), InternetGatewayId=Ref(gateway))
    )
    public_table = t.add_resource(RouteTable("PublicRouteTable", VpcId=Ref(vpc), Tags=ctx.tags()))
    t.add_resource(
        Route(
            "PublicDefaultRoute",
            DependsOn=attachment.title,
            RouteTableId=Ref(public_table),
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=Ref(gateway),
        )
    )
    zones: list[object] = [Select(i, GetAZs("")) for i in range(ZONE_COUNT)]
    public: list[object] = []
    private: list[object] = []
    private_tables: list[AWSObject] = []
    for i, zone in enumerate(zones):
        n = i + 1
        pub = t.add_resource(
            Subnet(
                f"PublicSubnet{n}",
                VpcId=Ref(vpc),
                AvailabilityZone=zone,
                CidrBlock=f"10.0.{i}.0/24",
                MapPublicIpOnLaunch=False,
                Tags=ctx.tags(Name=f"{ctx.stack_name}-public-{n}"),
            )
        )
        t.add_resource(
            SubnetRouteTableAssociation(
                f"PublicSubnet{n}Routes", SubnetId=Ref(pub), RouteTableId=Ref(public_table)
            )
        )
        # One NAT gateway per zone, so losing a zone never cuts the other zone's instances off.
        t.add_resource(EIP(f"NatAddress{n}", DependsOn=attachment.title, Domain="vpc"))
        nat = t.add_resource(
            NatGateway(
                f"NatGateway{n}", AllocationId=Sub(f"${{NatAddress{n}.AllocationId}}"), SubnetId=Ref(pub)
            )
        )
        priv = t.add_resource(
            Subnet(
                f"PrivateSubnet{n}",
                VpcId=Ref(vpc),
                AvailabilityZone=zone,
                CidrBlock=f"10.0.{10 + i}.0/24",
                Tags=ctx.tags(Name=f"{ctx.stack_name}-private-{n}"),
            )
        )
        table = t.add_resource(RouteTable(f"PrivateRouteTable{n}", VpcId=Ref(vpc), Tags=ctx.tags()))
        t.add_resource(
            Route(
                f"PrivateDefaultRoute{n}",
                RouteTableId=Ref(table),
                DestinationCidrBlock="0.0.0.0/0",
                NatGatewayId=Ref(nat),
            )
        )
        t.add_resource(
            SubnetRouteTableAssociation(
                f"PrivateSubnet{n}Routes", SubnetId=Ref(priv), RouteTableId=Ref(table)
            )
        )
        public.append(Ref(pub))
        private.append(Ref(priv))
        private_tables.append(table)
    # Bundles come from S3 through a (free) gateway endpoint rather than the NAT gateways.
    t.add_resource(
        VPCEndpoint(
            "S3Endpoint",
            VpcId=Ref(vpc),
            ServiceName=Sub("com.amazonaws.${AWS::Region}.s3"),
            VpcEndpointType="Gateway",
            RouteTableIds=[Ref(table) for table in private_tables],
        )
    )
    return Network(vpc=Ref(vpc), public_subnets=public, private_subnets=private, zones=zones)

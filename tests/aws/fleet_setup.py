"""Build, directly in moto, the parts of a stack a deploy acts on (moto's CloudFormation is partial)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import boto3

from sprout.bundle import S3Store
from sprout.providers.aws.context import RenderContext
from sprout.providers.aws.data import DataRefs
from sprout.providers.aws.deploy import Deployer, Timing
from sprout.providers.aws.deploystate import S3StateStore
from sprout.providers.aws.fleetapi import AwsFleet
from sprout.providers.aws.refs import StackRefs
from sprout.providers.aws.userdata import script
from sprout.spec import Manifest

from .conftest import REGION
from .helpers import RUNTIME

BUCKET = "sprout-123456789012-eu-central-1"


def c(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def build_fleet(manifest: Manifest, live_sha: str) -> StackRefs:
    """VPC, two subnets, an ALB with a weighted listener, blue (live) and green (idle) groups and templates."""
    ec2, elbv2, asg = c("ec2"), c("elbv2"), c("autoscaling")
    c("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in enumerate("ab")
    ]
    sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
    lb = elbv2.create_load_balancer(Name="sprout-test", Subnets=subnets, SecurityGroups=[sg])[
        "LoadBalancers"
    ][0]
    tgs = {
        colour: elbv2.create_target_group(
            Name=f"sprout-{colour}",
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc,
            HealthCheckPath=manifest.health.path,
        )["TargetGroups"][0]["TargetGroupArn"]
        for colour in ("blue", "green")
    }
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": tgs["blue"], "Weight": 100},
                        {"TargetGroupArn": tgs["green"], "Weight": 0},
                    ]
                },
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    ctx = RenderContext(manifest, "prod", live_sha, BUCKET, "0.0.0-test", RUNTIME)
    user_data = base64.b64encode(script(ctx, DataRefs()).encode()).decode()
    templates = {}
    groups = {}
    size = manifest.instances
    for colour in ("blue", "green"):
        templates[colour] = ec2.create_launch_template(
            LaunchTemplateName=f"sprout-{colour}",
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small", "UserData": user_data},
        )["LaunchTemplate"]["LaunchTemplateId"]
        live = colour == "blue"
        groups[colour] = f"sprout-test-{colour}"
        asg.create_auto_scaling_group(
            AutoScalingGroupName=groups[colour],
            LaunchTemplate={"LaunchTemplateId": templates[colour], "Version": "1"},
            MinSize=size.min if live else 0,
            MaxSize=size.max,
            DesiredCapacity=size.initial if live else 0,
            VPCZoneIdentifier=",".join(subnets),
            TargetGroupARNs=[tgs[colour]],
            HealthCheckType="ELB",
        )
    asg.put_scheduled_update_group_action(
        AutoScalingGroupName=groups["blue"],
        ScheduledActionName="Schedule1",
        Recurrence="30 19 * 6 *",
        MinSize=3,
    )
    return StackRefs(listener_arn=listener, target_groups=tgs, groups=groups, launch_templates=templates)


def deployer(manifest: Manifest, refs: StackRefs, clock: Any) -> Deployer:
    """A Deployer on moto with the manifest's timing and a settable clock."""
    fleet = AwsFleet(refs, c("elbv2"), c("autoscaling"), c("ec2"))
    states = S3StateStore(c("s3"), BUCKET, manifest.app.name, "prod")
    store = S3Store(BUCKET, manifest.app.name, client=c("s3"))
    return Deployer(fleet, states, store, Timing.of(manifest), cloudwatch=c("cloudwatch"), clock=clock)


def packed(app_dir: Path, out: Path) -> tuple[Path, str]:
    from sprout.bundle import pack

    bundle = pack(app_dir, out)
    return bundle.path, bundle.sha256

"""Build, directly in moto, the parts of a stack a deploy acts on (moto's CloudFormation is partial)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from sprout.bundle import FolderStore, S3Store
from sprout.deploy.engine import ReleaseEngine
from sprout.deploy.gate import GateResult
from sprout.providers.aws.context import RenderContext
from sprout.providers.aws.data import DataRefs
from sprout.providers.aws.deploystate import S3StateStore
from sprout.providers.aws.fleetapi import AwsFleet
from sprout.providers.aws.refs import StackRefs
from sprout.providers.aws.releasefleet import AwsReleaseFleet, aws_sized
from sprout.providers.aws.userdata import script
from sprout.spec import Manifest, load_manifest
from sprout.state import StateStore
from sprout.state.models import Version

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


@dataclass
class Releases:
    """The release engine over a moto fleet, with v1 (serving, as `aws up` left it) and v2 of an app."""

    engine: ReleaseEngine
    fleet: AwsReleaseFleet
    store: StateStore
    refs: StackRefs
    shas: dict[str, str]


def no_tests(version: str) -> GateResult:
    return GateResult(passed=True, seconds=0.0, skipped="the manifest has no [app] test command")


def releases(app_dir: Path, out: Path, clock: Any, lines: list[str] | None = None) -> Releases:
    """Pack v1 and v2 of the app (its `release.txt` differs), build the fleet with v1 live, and wire the
    engine as `sprout aws deploy` does (the bundles start in a local artifact store)."""
    manifest = aws_sized(load_manifest(app_dir / "sprout.toml"))
    app = manifest.app.name
    local = FolderStore(out / "artifacts")
    store = StateStore(out / "releases.db")
    shas = {}
    for label in ("v1", "v2"):
        (app_dir / "release.txt").write_text(label)
        path, sha = packed(app_dir, out / label)
        local.put(path)
        assert store.add_version(app, sha, path.stat().st_size, manifest, local.url).label == label
        shas[label] = sha
    refs = build_fleet(manifest, shas["v1"])
    artifacts = S3Store(BUCKET, app, client=c("s3"))
    artifacts.put(local.get(shas["v1"], out / "v1.tar.gz"))  # `aws up` uploaded the serving bundle
    store.upsert_environment(app, "prod", manifest, app_dir)
    store.set_current_version(app, "prod", "v1")
    # As `sprout aws deploy` records the version `aws up` left serving (what a rollback goes back to).
    store.append_history(
        user="alice", app=app, env="prod", action="adopt", manifest_hash=None, version="v1", diff_text="v1"
    )

    def version(label: str) -> Version:
        found = store.get_version(app, label)
        assert found is not None, label
        return found

    fleet = AwsReleaseFleet(
        AwsFleet(refs, c("elbv2"), c("autoscaling"), c("ec2")),
        S3StateStore(c("s3"), BUCKET, app),
        artifacts,
        local,
        lambda label: version(label).sha256,
        lambda sha: found.label if (found := store.version_by_sha(app, sha)) else None,
        lambda label: version(label).manifest,
        no_tests,
        cloudwatch=c("cloudwatch"),
        clock=clock,
        sleep=clock.sleep,
        report=None if lines is None else lines.append,
    )
    engine = ReleaseEngine(store, fleet, lambda _app, label: version(label).manifest, clock)
    return Releases(engine, fleet, store, refs, shas)


def packed(app_dir: Path, out: Path) -> tuple[Path, str]:
    from sprout.bundle import pack

    bundle = pack(app_dir, out)
    return bundle.path, bundle.sha256

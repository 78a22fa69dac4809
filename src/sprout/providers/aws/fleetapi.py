"""The fleet as a deploy sees it on AWS: listener weights, group sizes, launch template versions, health."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sprout.errors import ServiceError
from sprout.providers.aws.context import COLOURS, Colour
from sprout.providers.aws.refs import StackRefs
from sprout.providers.aws.userdata import BUNDLE_LINE, for_release, with_bundle
from sprout.providers.aws.wheels import Runtime

#: The tag that names where a release instance stores its result (so a resumed deploy finds it).
RESULT_TAG = "sprout:release-result"


@dataclass(frozen=True)
class Size:
    """An Auto Scaling group's bounds and desired capacity."""

    min: int
    max: int
    desired: int


@dataclass(frozen=True)
class Health:
    """One colour's readiness: instances InService in the group, and healthy targets in its target group."""

    desired: int
    in_service: int
    healthy: int
    problems: tuple[str, ...]

    @property
    def ready(self) -> bool:
        """Every desired instance is InService and a healthy target."""
        return self.desired > 0 and self.in_service >= self.desired and self.healthy >= self.desired


class AwsFleet:
    """ELBv2, Auto Scaling and EC2 calls on one stack's refs; every method is idempotent."""

    def __init__(self, refs: StackRefs, elbv2: Any, autoscaling: Any, ec2: Any) -> None:
        self.refs = refs
        self.elbv2 = elbv2
        self.autoscaling = autoscaling
        self.ec2 = ec2

    def weights(self) -> dict[Colour, int]:
        """The listener's current forward weights by colour."""
        listeners = self.elbv2.describe_listeners(ListenerArns=[self.refs.listener_arn])["Listeners"]
        by_arn = {c: 0 for c in COLOURS}
        for action in listeners[0]["DefaultActions"]:
            for tuple_ in action.get("ForwardConfig", {}).get("TargetGroups", []):
                for colour in COLOURS:
                    if tuple_["TargetGroupArn"] == self.refs.target_groups[colour]:
                        by_arn[colour] = int(tuple_.get("Weight", 0))
        return by_arn

    def live(self) -> Colour:
        """The colour that takes (most of) the traffic."""
        weights = self.weights()
        return "green" if weights["green"] > weights["blue"] else "blue"

    def set_weights(self, weights: dict[Colour, int]) -> None:
        """Forward to both target groups with these weights."""
        self.elbv2.modify_listener(
            ListenerArn=self.refs.listener_arn,
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": self.refs.target_groups[c], "Weight": weights[c]}
                            for c in COLOURS
                        ]
                    },
                }
            ],
        )

    def _group(self, colour: Colour) -> dict[str, Any]:
        name = self.refs.groups[colour]
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
        if not groups:
            raise ServiceError(
                f"Auto Scaling group {name} ({colour}) is gone; run `sprout aws up` to restore it"
            )
        group: dict[str, Any] = groups[0]
        return group

    def size(self, colour: Colour) -> Size:
        """The colour's group bounds and desired capacity."""
        group = self._group(colour)
        return Size(int(group["MinSize"]), int(group["MaxSize"]), int(group["DesiredCapacity"]))

    def resize(self, colour: Colour, size: Size) -> None:
        """Set the colour's group bounds and desired capacity."""
        self.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=self.refs.groups[colour],
            MinSize=size.min,
            MaxSize=size.max,
            DesiredCapacity=size.desired,
        )

    def launch_version(self, colour: Colour, sha256: str, runtime: Runtime | None = None) -> int:
        """A new launch template version booting bundle `sha256` (on `runtime`), now used by the colour's group."""
        template_id = self.refs.launch_templates[colour]
        latest = self.ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id, Versions=["$Latest"]
        )
        data = latest["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        script = base64.b64decode(data["UserData"]).decode("utf-8")
        created = self.ec2.create_launch_template_version(
            LaunchTemplateId=template_id,
            SourceVersion=str(latest["LaunchTemplateVersions"][0]["VersionNumber"]),
            VersionDescription=f"sprout bundle {sha256[:12]}",
            LaunchTemplateData={
                "UserData": base64.b64encode(with_bundle(script, sha256, runtime).encode()).decode()
            },
        )
        version = int(created["LaunchTemplateVersion"]["VersionNumber"])
        self.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=self.refs.groups[colour],
            LaunchTemplate={"LaunchTemplateId": template_id, "Version": str(version)},
        )
        return version

    def run_release(self, colour: Colour, version: int, result_key: str) -> str:
        """Start the one-off release instance from the colour's launch template `version`; return its id."""
        template_id = self.refs.launch_templates[colour]
        found = self.ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id, Versions=[str(version)]
        )
        script = base64.b64decode(
            found["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]
        ).decode()
        subnets = str(self._group(colour).get("VPCZoneIdentifier", "")).split(",")
        started = self.ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": template_id, "Version": str(version)},
            MinCount=1,
            MaxCount=1,
            SubnetId=subnets[0],
            UserData=for_release(script, result_key),
            InstanceInitiatedShutdownBehavior="terminate",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "sprout:role", "Value": "release"},
                        {"Key": RESULT_TAG, "Value": result_key},
                    ],
                }
            ],
        )
        return str(started["Instances"][0]["InstanceId"])

    def running_releases(self) -> dict[str, str]:
        """The release instances still pending or running: instance id → the key of their result."""
        found = self.ec2.describe_instances(
            Filters=[
                {"Name": "tag:sprout:role", "Values": ["release"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )
        return {
            str(i["InstanceId"]): str(tag["Value"])
            for r in found["Reservations"]
            for i in r["Instances"]
            for tag in i.get("Tags", [])
            if tag["Key"] == RESULT_TAG
        }

    def terminate(self, instance_id: str) -> None:
        """Terminate an instance (the release instance once its result is in)."""
        self.ec2.terminate_instances(InstanceIds=[instance_id])

    def bundle_of(self, colour: Colour) -> str:
        """The bundle sha256 the colour's group launches now ('' when its user data names none)."""
        spec = self._group(colour).get("LaunchTemplate", {})
        version = str(spec.get("Version") or "$Default")
        found = self.ec2.describe_launch_template_versions(
            LaunchTemplateId=self.refs.launch_templates[colour], Versions=[version]
        )["LaunchTemplateVersions"]
        script = base64.b64decode(found[0]["LaunchTemplateData"].get("UserData", "")).decode(
            "utf-8", "replace"
        )
        match = BUNDLE_LINE.search(script)
        return match.group(0).split("=", 1)[1] if match else ""

    def health(self, colour: Colour) -> Health:
        """The colour's readiness as the Auto Scaling group and the target group report it."""
        group = self._group(colour)
        in_service = [
            i["InstanceId"] for i in group.get("Instances", []) if i["LifecycleState"] == "InService"
        ]
        described = self.elbv2.describe_target_health(TargetGroupArn=self.refs.target_groups[colour])
        healthy = 0
        problems = []
        for entry in described["TargetHealthDescriptions"]:
            state = entry["TargetHealth"]["State"]
            if state == "healthy":
                healthy += 1
            else:
                reason = entry["TargetHealth"].get("Reason", "")
                problems.append(f"{entry['Target']['Id']} {state}{f' ({reason})' if reason else ''}")
        return Health(int(group["DesiredCapacity"]), len(in_service), healthy, tuple(problems))

    def move_schedule(self, source: Colour, dest: Colour) -> int:
        """Move the scheduled actions from one colour's group to the other's; return how many moved."""
        actions = self.autoscaling.describe_scheduled_actions(AutoScalingGroupName=self.refs.groups[source])
        moved = 0
        for action in actions.get("ScheduledUpdateGroupActions", []):
            args = {
                k: action[k]
                for k in ("Recurrence", "StartTime", "MinSize", "MaxSize", "DesiredCapacity")
                if action.get(k) is not None
            }
            self.autoscaling.put_scheduled_update_group_action(
                AutoScalingGroupName=self.refs.groups[dest],
                ScheduledActionName=action["ScheduledActionName"],
                **args,
            )
            try:
                self.autoscaling.delete_scheduled_action(
                    AutoScalingGroupName=self.refs.groups[source],
                    ScheduledActionName=action["ScheduledActionName"],
                )
            except Exception as exc:
                # Already gone (a resumed retire, or an API that keys actions by name alone): moved anyway.
                if "not found" not in str(exc):
                    raise
            moved += 1
        return moved

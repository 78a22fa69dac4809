"""`sprout aws status`: the stack, each colour's weight, size and bundle, healthy hosts per zone, the last release."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sprout.providers.aws.context import COLOURS, Colour
from sprout.providers.aws.deploystate import DeployState
from sprout.providers.aws.fleetapi import AwsFleet


def healthy_by_zone(fleet: AwsFleet, colour: Colour) -> dict[str, tuple[int, int]]:
    """Per availability zone: (healthy targets, instances) of the colour's group."""
    group: dict[str, Any] = fleet.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[fleet.refs.groups[colour]]
    )["AutoScalingGroups"][0]
    zone_of = {i["InstanceId"]: i["AvailabilityZone"] for i in group.get("Instances", [])}
    health = fleet.elbv2.describe_target_health(TargetGroupArn=fleet.refs.target_groups[colour])
    healthy = Counter(
        zone_of.get(t["Target"]["Id"], "?")
        for t in health["TargetHealthDescriptions"]
        if t["TargetHealth"]["State"] == "healthy"
    )
    instances = Counter(zone_of.values())
    return {zone: (healthy[zone], instances[zone]) for zone in sorted(set(instances) | set(healthy))}


def describe(
    stack: str, status: str, outputs: dict[str, str], fleet: AwsFleet, last: DeployState | None
) -> list[str]:
    """The status as readable lines."""
    lines = [f"stack {stack}: {status}"]
    if "Url" in outputs:
        lines.append(f"  url: {outputs['Url']}")
    weights = fleet.weights()
    for colour in COLOURS:
        size = fleet.size(colour)
        bundle = fleet.bundle_of(colour)
        zones = healthy_by_zone(fleet, colour)
        per_zone = ", ".join(f"{z} {h}/{n}" for z, (h, n) in zones.items()) or "no instances"
        lines.append(
            f"  {colour}: weight {weights[colour]}, {size.desired} running (min {size.min}, max {size.max}), "
            f"bundle {bundle[:12] or '-'}; healthy per zone: {per_zone}"
        )
    if last is None:
        lines.append("  last release: none (no `sprout aws deploy` yet)")
    else:
        lines.append(
            f"  last release: {last.id} {last.status} (bundle {last.sha256[:12]}, {last.source} -> {last.target})"
        )
        if last.events:
            lines.append(f"    {last.events[-1]}")
    return lines

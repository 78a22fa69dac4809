"""`sprout aws status`: the stack, each colour's weight, size and bundle, healthy hosts per zone, the last release."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sprout.deploy.engine import DONE, ReleaseEngine
from sprout.providers.aws.context import COLOURS, Colour
from sprout.providers.aws.fleetapi import AwsFleet
from sprout.state.models import Deployment


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


def describe(stack: str, status: str, outputs: dict[str, str], fleet: AwsFleet) -> list[str]:
    """The stack and its colours as readable lines."""
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
    return lines


def release_word(engine: ReleaseEngine, deployment: Deployment) -> str:
    """How a release stands, in a word: `holding` once it succeeded while the old colour is kept warm."""
    if deployment.state != DONE:
        return f"running (at step {deployment.state})"
    groups = engine.fleet.groups(deployment.app, deployment.env).values()
    if deployment.outcome == "succeeded" and any(g.standby_until for g in groups):
        return "holding"
    return str(deployment.outcome)


def release_lines(engine: ReleaseEngine, app: str, env: str) -> list[str]:
    """The environment's last release as the release engine recorded it, and its last event."""
    found = engine.store.list_deployments(app, env, limit=1)
    if not found:
        return ["  last release: none (no `sprout aws deploy` yet)"]
    last = found[-1]
    word = release_word(engine, last)
    moved = (
        f", {last.data['old']} -> {last.data['new']}" if last.data.get("old") and last.data.get("new") else ""
    )
    lines = [f"  last release: {last.id} {word} ({last.version} by {last.strategy}{moved})"]
    events = [e for e in engine.store.list_events(app, env, limit=50) if e.data.get("deployment") == last.id]
    if events:
        lines.append(f"    {events[-1].message}")
    return lines

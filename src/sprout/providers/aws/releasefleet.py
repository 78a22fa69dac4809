"""The release engine's fleet seam on AWS: the two colour Auto Scaling groups behind the weighted listener.

A group is a colour's Auto Scaling group; its version and the end of its rollback window are tags on
it, so any machine reads the fleet as AWS has it. Launching a group at a new version uploads the
version's bundle to the bucket (content-addressed) and points the colour at a new launch template
version booting it; traffic moves by the listener's forward weights; health is InService instances
that are healthy targets; canary analysis reads the target groups' CloudWatch metrics over the
interval; the release command runs once on a one-off instance (see `release.py`). With two colours,
the strategies that move capacity batch by batch between groups are refused up front.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sprout.bundle import ArtifactStore
from sprout.deploy.analysis import Window
from sprout.deploy.fleet import GroupHealth
from sprout.deploy.gate import GateResult
from sprout.errors import SproutError, UserError
from sprout.providers.aws.canary import window
from sprout.providers.aws.context import COLOURS, Colour, other
from sprout.providers.aws.deploystate import S3StateStore
from sprout.providers.aws.fleetapi import AwsFleet, Size
from sprout.providers.aws.release import result_key, result_prefix
from sprout.providers.aws.wheels import Runtime
from sprout.spec import Manifest
from sprout.state.models import Group

#: The default health timeout on AWS: an instance boots (Python, Sprout, the app's install) before the
#: load balancer's health checks count, so one machine's 2 minutes would fail healthy deploys.
AWS_HEALTH_TIMEOUT = 900.0
VERSION_TAG = "sprout:version"
STANDBY_TAG = "sprout:standby-until"
SINCE_TAG = "sprout:since"
#: Seconds between two looks for the release instance's result.
RELEASE_POLL = 5.0


def aws_sized(manifest: Manifest) -> Manifest:
    """The manifest as a release on AWS reads it: an unset health timeout is AWS-sized (a boot takes minutes)."""
    if "health_timeout" in manifest.deploy.model_fields_set:
        return manifest
    deploy = manifest.deploy.model_copy(update={"health_timeout": AWS_HEALTH_TIMEOUT})
    return manifest.model_copy(update={"deploy": deploy})


#: What a release on AWS can do: move traffic between the two colours at once or by canary steps.
STRATEGIES = ("bluegreen", "canary")


def refusal(strategy: str) -> str:
    """Why `strategy` cannot run on AWS, naming the strategy to use instead."""
    return (
        f"--strategy {strategy}: on AWS a release moves traffic between two colour groups by listener "
        "weights and does not replace instances batch by batch; use bluegreen (or canary)"
    )


class AwsReleaseFleet:
    """`sprout.deploy.fleet.Fleet` over one stack's colour groups, listener, bucket and CloudWatch."""

    strategies: tuple[str, ...] = STRATEGIES

    def __init__(
        self,
        fleet: AwsFleet,
        states: S3StateStore,
        artifacts: ArtifactStore,
        local: ArtifactStore,
        sha_of: Callable[[str], str],
        label_of: Callable[[str], str | None],
        manifest_of: Callable[[str], Manifest],
        gate: Callable[[str], GateResult],
        cloudwatch: Any = None,
        runtime: Runtime | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.states = states
        self.artifacts = artifacts
        self.local = local
        self.sha_of = sha_of
        self.label_of = label_of
        self.manifest_of = manifest_of
        self.gate = gate
        self.cloudwatch = cloudwatch
        self.runtime = runtime
        self.clock = clock
        self.sleep = sleep
        self.report = report or (lambda line: None)

    def refusal(self, strategy: str) -> str:
        return refusal(strategy)

    def _tags(self, colour: Colour) -> dict[str, str]:
        name = self.fleet.refs.groups[colour]
        found = self.fleet.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        tags = found["AutoScalingGroups"][0].get("Tags", []) if found["AutoScalingGroups"] else []
        return {str(t["Key"]): str(t["Value"]) for t in tags}

    def _tag(self, colour: Colour, values: Mapping[str, str | None]) -> None:
        name = self.fleet.refs.groups[colour]

        def tag(key: str, value: str = "") -> dict[str, Any]:
            return {
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": False,
            }

        kept = [tag(k, v) for k, v in values.items() if v is not None]
        gone = [tag(k) for k, v in values.items() if v is None]
        if kept:
            self.fleet.autoscaling.create_or_update_tags(Tags=kept)
        if gone:
            self.fleet.autoscaling.delete_tags(Tags=gone)

    def groups(self, app: str, env: str) -> dict[str, Group]:
        weights = self.fleet.weights()
        found: dict[str, Group] = {}
        for colour in COLOURS:
            size, tags = self.fleet.size(colour), self._tags(colour)
            if size.desired == 0:
                continue
            version = self._version(colour, tags)
            standby = tags.get(STANDBY_TAG)
            found[colour] = Group(
                colour, version, size.desired, weights[colour], float(standby) if standby else None
            )
        return found

    def _version(self, colour: Colour, tags: Mapping[str, str]) -> str:
        if VERSION_TAG in tags:
            return tags[VERSION_TAG]
        # A colour `aws up` launched carries no version tag: the version whose bundle it boots.
        sha256 = self.fleet.bundle_of(colour)
        return self.label_of(sha256) or f"bundle {sha256[:12]}"

    def set_group(self, app: str, env: str, group: Group) -> None:
        colour = _colour(group.name)
        tags = self._tags(colour)
        size = self.fleet.size(colour)
        changes: dict[str, str | None] = {
            VERSION_TAG: group.version,
            STANDBY_TAG: None if group.standby_until is None else repr(group.standby_until),
        }
        if self._version(colour, tags) != group.version or size.desired == 0:
            sha256 = self.sha_of(group.version)
            self._upload(sha256)
            self.fleet.launch_version(colour, sha256, self.runtime)
            changes[SINCE_TAG] = repr(self.clock())
        floor = min(self.manifest_of(group.version).instances.min, group.capacity)
        self.fleet.resize(colour, Size(floor, max(size.max, group.capacity), group.capacity))
        self._tag(colour, changes)
        if self.fleet.weights()[colour] != group.weight:
            self.set_weights(app, env, {colour: group.weight})

    def _upload(self, sha256: str) -> None:
        if self.artifacts.exists(sha256):
            return
        if not self.local.exists(sha256):
            raise UserError(f"bundle {sha256[:12]} is in neither {self.local.url} nor {self.artifacts.url}")
        with tempfile.TemporaryDirectory(prefix="sprout-upload-") as tmp:
            self.artifacts.put(self.local.get(sha256, Path(tmp) / f"{sha256}.tar.gz"))

    def remove_group(self, app: str, env: str, name: str) -> None:
        colour = _colour(name)
        size = self.fleet.size(colour)
        if self.fleet.weights()[colour]:
            self.set_weights(app, env, {colour: 0})
        self.fleet.resize(colour, Size(0, size.max, 0))
        self.fleet.move_schedule(colour, other(colour))
        self._tag(colour, {VERSION_TAG: None, STANDBY_TAG: None})

    def set_weights(self, app: str, env: str, weights: Mapping[str, int]) -> None:
        current = self.fleet.weights()
        merged = {**current, **{_colour(name): weight for name, weight in weights.items()}}
        if merged == current:
            return
        self.fleet.set_weights(merged)
        self.report(f"weights: {describe_weights(merged)}")

    def health(self, app: str, env: str, name: str, since: float) -> GroupHealth:
        health = self.fleet.health(_colour(name))
        healthy = min(health.healthy, health.in_service)
        return GroupHealth(
            health.desired, healthy, max(health.desired - healthy, 0), 0, "; ".join(health.problems) or None
        )

    def metrics(self, app: str, env: str) -> dict[str, Mapping[str, Any]]:
        now = self.clock()
        return {colour: {"at": now} for colour in COLOURS}

    def window(
        self, app: str, env: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
    ) -> Window:
        refs = self.fleet.refs
        start = (
            float(before["at"]) if before else float(self._tags(_colour(name)).get(SINCE_TAG, after["at"]))
        )
        target_group = refs.target_groups[_colour(name)]
        return window(self.cloudwatch, refs.listener_arn, target_group, start, float(after["at"]))

    def smoke(self, app: str, env: str, name: str, path: str) -> str | None:
        return (
            f"smoke_path {path}: instances on AWS are checked by the load balancer's health check on "
            "[health] path only; remove [deploy] smoke_path or make it the health path"
        )

    def release(self, app: str, env: str, version: str, stop: threading.Event | None = None) -> None:
        manifest = self.manifest_of(version)
        command = manifest.app.release
        if not command:
            return
        # A deploy that died while its release instance ran resumes by waiting for that instance.
        prefix = result_prefix(env, version)
        running = [(i, key) for i, key in self.fleet.running_releases().items() if key.startswith(prefix)]
        if running:
            instance, key = running[0]
            self.report(f"release: `{command}` already runs on {instance}; waiting for its result")
        else:
            colour = other(self.fleet.live())
            sha256 = self.sha_of(version)
            self._upload(sha256)
            launch = self.fleet.launch_version(colour, sha256, self.runtime)
            key = result_key(env, version, int(self.clock() * 1000))
            instance = self.fleet.run_release(colour, launch, key)
            self.report(f"release: `{command}` runs once on {instance}")
        deadline = self.clock() + manifest.deploy.health_timeout
        try:
            found = self.states.read_json(key)
            while found is None:
                if stop is not None and stop.is_set():
                    raise SproutError(f"release: `{command}` stopped on {instance}: its release ended")
                if self.clock() > deadline:
                    raise SproutError(
                        f"release: no result from {instance} after {manifest.deploy.health_timeout:g}s "
                        f"(its boot log is the stream {instance}/boot); weights unchanged"
                    )
                self.sleep(RELEASE_POLL)
                found = self.states.read_json(key)
        finally:
            self.fleet.terminate(instance)
        if int(found["exit_code"]) != 0:
            # The command's own last lines; Sprout's bootstrap lines ("[sprout] …") say nothing about why.
            tail = " | ".join(
                [line for line in found.get("tail", []) if not line.startswith("[sprout]")][-5:]
            )
            raise SproutError(
                f"`{command}` exited {found['exit_code']} on {instance}: {tail}; weights unchanged"
            )
        self.report(f"release `{command}` exited 0 in {float(found['seconds']):.1f}s; {instance} terminated")

    def test(self, app: str, env: str, version: str) -> GateResult:
        return self.gate(version)


def describe_weights(weights: Mapping[Colour, int]) -> str:
    """Forward weights as a person reads them, the heaviest first: `green 100, blue 0`."""
    return ", ".join(f"{colour} {weight}" for colour, weight in sorted(weights.items(), key=lambda i: -i[1]))


def _colour(name: str) -> Colour:
    if name == "blue":
        return "blue"
    if name == "green":
        return "green"
    raise UserError(f"aws: group {name!r} is not a colour (blue, green)")

"""Acceptance 2: bundle upload, and releases by the release engine on the AWS fleet (moto's S3, ELBv2, Auto
Scaling), each step checked on the platform. Canary, instant rollback and crash recovery on AWS run in
tests/deploy/test_provider_releases.py with the other providers'."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from sprout.bundle import S3Store
from sprout.deploy.engine import DONE
from sprout.state.models import Deployment

from .fleet_setup import BUCKET, Releases, c, packed, releases
from .helpers import ROOT

OLD_SHA = "1" * 64


class Clock:
    """A clock the test moves by hand, so waits (drain, hold, health timeout) need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """What a wait between two looks does: time passes, instantly."""
        self.now += seconds


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The hello example with deploy timings made explicit for the test."""
    folder = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", folder)
    manifest = (folder / "sprout.toml").read_text()
    manifest += (
        '\n[deploy]\nstrategy = "bluegreen"\ndrain = "30s"\nrollback_window = "10m"\nhealth_timeout = "2m"\n'
    )
    (folder / "sprout.toml").write_text(manifest)
    return folder


def weights(refs: object) -> dict[str, int]:
    listener = c("elbv2").describe_listeners(ListenerArns=[refs.listener_arn])["Listeners"][0]  # type: ignore[attr-defined]
    found = {}
    for tg in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]:
        colour = "blue" if tg["TargetGroupArn"] == refs.target_groups["blue"] else "green"  # type: ignore[attr-defined]
        found[colour] = tg["Weight"]
    return found


def sizes(refs: object) -> dict[str, tuple[int, int, int]]:
    out = {}
    for colour, name in refs.groups.items():  # type: ignore[attr-defined]
        g = c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
            0
        ]
        out[colour] = (g["MinSize"], g["MaxSize"], g["DesiredCapacity"])
    return out


def test_bundle_upload_is_content_addressed(aws: str, app: Path, tmp_path: Path) -> None:
    c("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    path, sha = packed(app, tmp_path / "out")
    store = S3Store(BUCKET, "hello", client=c("s3"))
    assert store.put(path) == sha
    assert store.put(path) == sha  # the same content is stored once
    keys = [o["Key"] for o in c("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"hello/bundles/{sha}.tar.gz"]
    fetched = store.get(sha, tmp_path / "back.tar.gz")
    assert fetched.read_bytes() == path.read_bytes()
    (app / "extra.txt").write_text("a change makes a new version\n")
    path2, sha2 = packed(app, tmp_path / "out2")
    assert sha2 != sha and store.put(path2) == sha2
    assert store.list() == sorted([sha, sha2])


def tick(r: Releases, deployment: Deployment, state: str) -> Deployment:
    """One step of the release, which must lead to `state`."""
    deployment = r.engine.tick(deployment.id)
    assert deployment.state == state, (deployment.reason, deployment.data.get("waiting"))
    return deployment


def drive(r: Releases, deployment: Deployment, clock: Clock) -> Deployment:
    for _ in range(100):
        deployment = r.engine.tick(deployment.id)
        if deployment.state == DONE:
            return deployment
        clock.now += 1
    raise AssertionError(f"stuck at {deployment.state}")


def test_blue_green_release_step_by_step(aws: str, app: Path, tmp_path: Path) -> None:
    clock = Clock()
    lines: list[str] = []
    r = releases(app, tmp_path / "out", clock, lines)
    refs, v2 = r.refs, r.shas["v2"]

    deployment = r.engine.start("hello", "prod", "v2", "bluegreen", "alice")
    assert deployment.state == "release"
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (0, 4, 0)}
    deployment = tick(r, deployment, "launch")  # no [app] release command
    assert not S3Store(BUCKET, "hello", client=c("s3")).exists(v2)  # nothing uploaded before the launch

    deployment = tick(r, deployment, "wait_healthy")  # v2 uploaded, green launches it at the live size
    assert S3Store(BUCKET, "hello", client=c("s3")).exists(v2)
    version = c("ec2").describe_launch_template_versions(
        LaunchTemplateId=refs.launch_templates["green"], Versions=["2"]
    )["LaunchTemplateVersions"][0]
    assert f"BUNDLE_SHA256={v2}" in base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
    group = c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[refs.groups["green"]])
    assert group["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "2"
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (2, 4, 2)}
    assert weights(refs) == {"blue": 100, "green": 0}

    deployment = tick(r, deployment, "smoke")  # moto reports the new instances InService and healthy targets
    assert weights(refs) == {"blue": 100, "green": 0}
    deployment = tick(r, deployment, "switch")
    deployment = tick(r, deployment, "finish")
    assert weights(refs) == {"blue": 0, "green": 100}
    assert lines == ["weights: green 100, blue 0"]
    deployment = tick(r, deployment, DONE)
    assert deployment.outcome == "succeeded"
    assert r.store.get_environment("hello", "prod").current_version == "v2"  # type: ignore[union-attr]
    assert sizes(refs)["blue"] == (2, 4, 2)  # kept warm for the rollback window

    # The fleet's groups are read from AWS itself (versions and the warm window are tags on the groups).
    found = r.fleet.groups("hello", "prod")
    assert (found["green"].version, found["green"].weight, found["blue"].version) == ("v2", 100, "v1")
    assert found["blue"].standby_until == clock.now + 600

    clock.now += 599
    assert r.engine.retire_expired("hello", "prod") == []
    clock.now += 1
    assert r.engine.retire_expired("hello", "prod") == ["blue"]
    assert sizes(refs) == {"blue": (0, 4, 0), "green": (2, 4, 2)}
    actions = c("autoscaling").describe_scheduled_actions(AutoScalingGroupName=refs.groups["green"])
    assert [a["ScheduledActionName"] for a in actions["ScheduledUpdateGroupActions"]] == ["Schedule1"]


def test_rollback_after_retirement_brings_the_old_version_back(aws: str, app: Path, tmp_path: Path) -> None:
    clock = Clock()
    r = releases(app, tmp_path / "out", clock)
    done = drive(r, r.engine.start("hello", "prod", "v2", "bluegreen", "alice"), clock)
    assert done.outcome == "succeeded", done.reason
    clock.now += 600
    assert r.engine.retire_expired("hello", "prod") == ["blue"]

    result = r.engine.rollback("hello", "prod", "bob")
    assert (result.instant, result.version) == (False, "v1")
    assert "the rollback window has passed: warm fleet blue (v1)" in result.note
    assert result.deployment is not None
    final = drive(r, result.deployment, clock)
    assert final.outcome == "succeeded", final.reason
    assert weights(refs := r.refs) == {"blue": 100, "green": 0}
    assert sizes(refs)["blue"] == (2, 4, 2)
    assert r.fleet.fleet.bundle_of("blue") == r.shas["v1"]
    assert r.store.get_environment("hello", "prod").current_version == "v1"  # type: ignore[union-attr]


def test_unhealthy_new_colour_aborts_without_moving_weights(aws: str, app: Path, tmp_path: Path) -> None:
    clock = Clock()
    r = releases(app, tmp_path / "out", clock)
    refs = r.refs
    deployment = r.engine.start("hello", "prod", "v2", "bluegreen", "alice")
    while deployment.state != "wait_healthy":
        deployment = r.engine.tick(deployment.id)
    # A stopped instance is what moto reports as an unhealthy target ("unused", Target.InvalidState).
    group = c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[refs.groups["green"]])
    victim = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    c("ec2").stop_instances(InstanceIds=[victim])
    health = c("elbv2").describe_target_health(TargetGroupArn=refs.target_groups["green"])
    assert {t["TargetHealth"]["State"] for t in health["TargetHealthDescriptions"]} == {"healthy", "unused"}

    deployment = r.engine.tick(deployment.id)
    assert deployment.state == "wait_healthy"  # still within health_timeout
    assert deployment.data["waiting"] == "1/2 healthy"
    clock.now += 121
    deployment = drive(r, deployment, clock)
    assert deployment.outcome == "aborted"
    assert "new instances not healthy on /healthz after 120s (1/2 healthy)" in deployment.reason
    assert victim in deployment.reason
    assert weights(refs) == {"blue": 100, "green": 0}
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (0, 4, 0)}
    assert r.store.get_environment("hello", "prod").current_version == "v1"  # type: ignore[union-attr]

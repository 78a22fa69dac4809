"""Acceptance 2: bundle upload and blue/green / canary deploys driven on moto's S3, ELBv2 and Auto Scaling."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from sprout.bundle import S3Store
from sprout.errors import ConflictError
from sprout.spec import load_manifest

from .fleet_setup import BUCKET, build_fleet, c, deployer, packed
from .helpers import ROOT

OLD_SHA = "1" * 64


class Clock:
    """A clock the test moves by hand, so waits (drain, hold, health timeout) need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """What `Deployer.run` calls between polls: time passes, instantly."""
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


def test_blue_green_deploy_step_by_step(aws: str, app: Path, tmp_path: Path) -> None:
    manifest = load_manifest(app / "sprout.toml")
    refs = build_fleet(manifest, OLD_SHA)
    clock = Clock()
    d = deployer(manifest, refs, clock)
    path, sha = packed(app, tmp_path / "out")

    state = d.start("hello", "prod", sha, "bluegreen", path)
    assert (state.source, state.target, state.step, state.previous_sha256) == (
        "blue",
        "green",
        "upload",
        OLD_SHA,
    )
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (0, 4, 0)}

    state = d.advance(state)  # upload verified
    assert state.step == "launch"
    state = d.advance(state)  # a new launch template version for green
    assert (state.step, state.launch_version) == ("scale_up", 2)
    version = c("ec2").describe_launch_template_versions(
        LaunchTemplateId=refs.launch_templates["green"], Versions=["2"]
    )["LaunchTemplateVersions"][0]
    assert f"BUNDLE_SHA256={sha}" in base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
    group = c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[refs.groups["green"]])
    assert group["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "2"

    state = d.advance(state)  # green scaled to the live size
    assert state.step == "wait_healthy"
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (2, 4, 2)}
    assert weights(refs) == {"blue": 100, "green": 0}

    state = d.advance(state)  # moto reports the new instances InService and healthy targets
    assert state.step == "shift", state.events
    assert weights(refs) == {"blue": 100, "green": 0}
    state = d.advance(state)
    assert state.step == "drain"
    assert weights(refs) == {"blue": 0, "green": 100}

    assert d.advance(state).step == "drain"  # deregistration delay (30 s) not over yet
    clock.now += 30
    state = d.advance(state)
    assert (state.step, state.status) == ("hold", "holding")
    assert sizes(refs)["blue"] == (2, 4, 2)  # kept warm for the rollback window

    clock.now += 599
    assert d.advance(state).step == "hold"
    clock.now += 1
    state = d.advance(state)
    assert state.step == "retire"
    state = d.advance(state)
    assert (state.step, state.status) == ("finished", "done")
    assert sizes(refs) == {"blue": (0, 4, 0), "green": (2, 4, 2)}
    actions = c("autoscaling").describe_scheduled_actions(AutoScalingGroupName=refs.groups["green"])
    assert [a["ScheduledActionName"] for a in actions["ScheduledUpdateGroupActions"]] == ["Schedule1"]
    # The state is persisted in S3: a second operator (a new Deployer) sees the same deployment.
    assert deployer(manifest, refs, clock).states.load() == state


def test_deploy_resumes_from_saved_state(aws: str, app: Path, tmp_path: Path) -> None:
    manifest = load_manifest(app / "sprout.toml")
    refs = build_fleet(manifest, OLD_SHA)
    clock = Clock()
    path, sha = packed(app, tmp_path / "out")
    first = deployer(manifest, refs, clock)
    state = first.advance(first.advance(first.start("hello", "prod", sha, "bluegreen", path)))
    assert state.step == "scale_up"
    with pytest.raises(ConflictError, match="resume it with `sprout aws deploy --resume`"):
        first.start("hello", "prod", sha, "bluegreen", path)
    # A new process picks the saved state up and finishes.
    second = deployer(manifest, refs, clock)
    saved = second.states.load()
    assert saved == state
    final = second.run(saved, poll=5, sleep=clock.sleep)
    assert final.status == "done"
    assert weights(refs) == {"blue": 0, "green": 100}


def test_rollback_while_old_colour_is_warm_restores_weights(aws: str, app: Path, tmp_path: Path) -> None:
    manifest = load_manifest(app / "sprout.toml")
    refs = build_fleet(manifest, OLD_SHA)
    clock = Clock()
    d = deployer(manifest, refs, clock)
    path, sha = packed(app, tmp_path / "out")
    state = d.run(
        d.start("hello", "prod", sha, "bluegreen", path), poll=5, sleep=clock.sleep, through_hold=False
    )
    assert state.status == "holding"
    assert weights(refs) == {"blue": 0, "green": 100}

    state = d.rollback()
    assert state.status == "rolled_back"
    assert weights(refs) == {"blue": 100, "green": 0}
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (0, 4, 0)}


def test_rollback_after_retirement_brings_the_old_colour_back(aws: str, app: Path, tmp_path: Path) -> None:
    manifest = load_manifest(app / "sprout.toml")
    refs = build_fleet(manifest, OLD_SHA)
    clock = Clock()
    d = deployer(manifest, refs, clock)
    path, sha = packed(app, tmp_path / "out")
    state = d.start("hello", "prod", sha, "bluegreen", path)
    assert d.run(state, poll=5, sleep=clock.sleep).status == "done"
    assert sizes(refs)["blue"] == (0, 4, 0)

    reverse = d.rollback()
    assert (reverse.source, reverse.target, reverse.sha256) == ("green", "blue", OLD_SHA)
    final = d.run(reverse, poll=5, sleep=clock.sleep)
    assert final.status == "done"
    assert weights(refs) == {"blue": 100, "green": 0}
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (0, 4, 0)}


def test_unhealthy_target_group_aborts_without_moving_weights(aws: str, app: Path, tmp_path: Path) -> None:
    manifest = load_manifest(app / "sprout.toml")
    refs = build_fleet(manifest, OLD_SHA)
    clock = Clock()
    d = deployer(manifest, refs, clock)
    path, sha = packed(app, tmp_path / "out")
    state = d.start("hello", "prod", sha, "bluegreen", path)
    while state.step != "wait_healthy":
        state = d.advance(state)
    # A stopped instance is what moto reports as an unhealthy target ("unused", Target.InvalidState).
    group = c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[refs.groups["green"]])
    victim = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    c("ec2").stop_instances(InstanceIds=[victim])
    health = c("elbv2").describe_target_health(TargetGroupArn=refs.target_groups["green"])
    assert {t["TargetHealth"]["State"] for t in health["TargetHealthDescriptions"]} == {"healthy", "unused"}

    state = d.advance(state)
    assert state.step == "wait_healthy"  # still within health_timeout
    clock.now += 120
    state = d.advance(state)
    assert state.status == "failed"
    assert "green not healthy after 120s" in state.reason and victim in state.reason
    assert "weights unchanged" in state.reason
    assert weights(refs) == {"blue": 100, "green": 0}
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (0, 4, 0)}


def test_canary_steps_weights_and_rolls_back_on_5xx(aws: str, app: Path, tmp_path: Path) -> None:
    text = (app / "sprout.toml").read_text().replace('strategy = "bluegreen"', 'strategy = "canary"')
    text += '\n[deploy.canary]\nsteps = [10, 50, 100]\ninterval = "60s"\nmin_requests = 20\n'
    (app / "sprout.toml").write_text(text)
    manifest = load_manifest(app / "sprout.toml")
    refs = build_fleet(manifest, OLD_SHA)
    clock = Clock()
    d = deployer(manifest, refs, clock)
    path, sha = packed(app, tmp_path / "out")
    state = d.start("hello", "prod", sha, "canary", path)
    while state.step != "shift":
        state = d.advance(state)
    state = d.advance(state)
    assert weights(refs) == {"blue": 90, "green": 10}

    # The canary's target group reports 5xx in CloudWatch: half of its requests fail.
    lb, tg = __import__("sprout.providers.aws.canary", fromlist=["full_names"]).full_names(
        refs.listener_arn, refs.target_groups["green"]
    )
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(clock.now + 30, UTC)
    dims = [{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": tg}]
    c("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": "RequestCount", "Dimensions": dims, "Timestamp": when, "Value": 100.0},
            {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Timestamp": when, "Value": 50.0},
        ],
    )
    clock.now += 60
    state = d.advance(state)
    assert state.status == "rolled_back", state.events
    assert "canary 5xx rate 50.0%" in state.reason
    assert weights(refs) == {"blue": 100, "green": 0}
    assert sizes(refs)["green"] == (0, 4, 0)

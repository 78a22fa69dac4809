"""`sprout aws up`, `status`, `deploy`, `rollback` and `down --purge` as a user runs them, against moto.

One test runs them all on the whole rendered template (moto's gaps filled in by `moto_gaps`, never in
the template); the others build the fleet in moto directly (`fleet_setup`) under a small stack that
carries the outputs the commands discover it by — exactly the outputs `template.build` declares.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sprout.providers.aws.context import COLOURS, title
from sprout.providers.aws.refs import StackRefs
from sprout.spec import load_manifest

from .conftest import client
from .fleet_setup import BUCKET, build_fleet
from .helpers import ROOT
from .test_deploy_moto import OLD_SHA, sizes, weights


def sprout(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args],
        env=dict(os.environ),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stack_with_outputs(refs: StackRefs) -> None:
    outputs = {"ListenerArn": refs.listener_arn}
    for colour in COLOURS:
        outputs[f"{title(colour)}TargetGroup"] = refs.target_groups[colour]
        outputs[f"{title(colour)}Group"] = refs.groups[colour]
        outputs[f"{title(colour)}LaunchTemplate"] = refs.launch_templates[colour]
    template = {
        "Resources": {
            "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/sprout/hello/prod"}},
            # Retained by the real template too: `down` keeps it, `down --purge` empties and deletes it.
            "AccessLogBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    client("cloudformation").create_stack(StackName="sprout-hello-prod", TemplateBody=json.dumps(template))  # type: ignore[attr-defined]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", folder)
    with open(folder / "sprout.toml", "a") as f:
        f.write('\n[deploy]\nstrategy = "bluegreen"\ndrain = "0s"\nrollback_window = "10m"\n')
    return folder


def test_deploy_then_rollback_from_the_command_line(aws: str, app: Path) -> None:
    refs = build_fleet(load_manifest(app / "sprout.toml"), OLD_SHA)
    stack_with_outputs(refs)

    deployed = sprout("aws", "deploy", str(app), "--env", "prod", "--no-wait-hold")
    assert deployed.returncode == 0, deployed.stderr
    out = deployed.stdout
    # `aws up`'s bundle is the environment's v1; the folder is released as v2 by the release engine.
    assert re.search(r"^deploy v2 \(bundle [0-9a-f]{12}\): blue is live, green takes over$", out, re.M), out
    assert re.search(r"^release 1: v2 \(bluegreen\) by ", out, re.M), out
    assert "launch → wait_healthy: launching 2 instance(s) of v2 in group green" in out
    assert "wait_healthy → smoke: 2/2 healthy" in out
    assert "weights: green 100, blue 0" in out
    assert "release succeeded: v2 serves 100% of traffic" in out
    assert out.strip().endswith("deployment 1: holding")
    assert weights(refs) == {"blue": 0, "green": 100}
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (2, 4, 2)}

    rolled = sprout("aws", "rollback", str(app), "--env", "prod")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back: weights blue 100, green 0" in rolled.stdout
    assert "live: v1" in rolled.stdout
    assert weights(refs) == {"blue": 100, "green": 0}
    assert sizes(refs)["green"] == (0, 4, 0)


def release_instances() -> list[str]:
    found = client("ec2").describe_instances(Filters=[{"Name": "tag:sprout:role", "Values": ["release"]}])  # type: ignore[attr-defined]
    return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]


def play_release_instance(known: list[str]) -> str:
    """Wait for a release instance not in `known`, then report its command's success where it would."""
    deadline = time.monotonic() + 120
    while not (fresh := [i for i in release_instances() if i not in known]):
        assert time.monotonic() < deadline, "no release instance started"
        time.sleep(0.5)
    data = client("ec2").describe_instance_attribute(InstanceId=fresh[0], Attribute="userData")  # type: ignore[attr-defined]
    found = re.search(r"^SPROUT_RELEASE=(\S+)$", base64.b64decode(data["UserData"]["Value"]).decode(), re.M)
    assert found is not None
    body = {"command": "migrate", "exit_code": 0, "seconds": 0.5, "tail": ["migrated"]}
    client("s3").put_object(Bucket=BUCKET, Key=f"hello/{found.group(1)}", Body=json.dumps(body).encode())  # type: ignore[attr-defined]
    return fresh[0]


def test_a_deploy_killed_mid_release_holds_the_lock_until_resumed(aws: str, app: Path) -> None:
    text = (app / "sprout.toml").read_text()
    (app / "sprout.toml").write_text(text.replace("[health]", 'release = "migrate"\n\n[health]', 1))
    refs = build_fleet(load_manifest(app / "sprout.toml"), OLD_SHA)
    stack_with_outputs(refs)
    command = [sys.executable, "-m", "sprout", "aws", "deploy", str(app), "--env", "prod", "--no-wait-hold"]
    first = subprocess.Popen(
        command, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # The process dies while its release command runs on the one-off instance.
        deadline = time.monotonic() + 120
        while not release_instances():
            assert time.monotonic() < deadline and first.poll() is None, "no release instance started"
            time.sleep(0.5)
    finally:
        first.kill()
        first.wait()
    assert weights(refs) == {"blue": 100, "green": 0}

    again = sprout("aws", "deploy", str(app), "--env", "prod")
    assert again.returncode == 3, again.stderr
    assert "is at step release; resume it with `sprout aws deploy --resume`" in again.stderr

    resumed = subprocess.Popen(
        [*command, "--resume"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The resumed deploy waits for the instance the dead one started: the command runs once.
        instance = play_release_instance([])
        out, _ = resumed.communicate(timeout=120)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()
    assert resumed.returncode == 0, out
    assert f"release: `migrate` already runs on {instance}; waiting for its result" in out
    assert f"release `migrate` exited 0 in 0.5s; {instance} terminated" in out
    assert release_instances() == [instance]
    assert "weights: green 100, blue 0" in out
    assert weights(refs) == {"blue": 0, "green": 100}


def test_up_uploads_the_bundle_and_shows_the_plan_before_asking(aws: str, app: Path) -> None:
    result = sprout("aws", "up", str(app), "--env", "prod", stdin="n\n")
    assert result.returncode != 0  # declined at the prompt
    assert "created bucket sprout-123456789012-eu-central-1" in result.stdout
    assert "stack sprout-hello-prod: create, 40 change(s)" in result.stdout
    assert "apply these changes?" in result.stdout
    objects = client("s3").list_objects_v2(Bucket="sprout-123456789012-eu-central-1")["Contents"]  # type: ignore[attr-defined]
    keys = sorted(o["Key"] for o in objects)
    # The bundle, and the running Sprout as a wheel and a wheelhouse, each under its own sha256.
    assert [k.split("/")[1] for k in keys] == ["bundles", "sprout", "sprout"]
    wheel = next(k for k in keys if k.endswith(".whl"))
    assert re.fullmatch(r"hello/sprout/[0-9a-f]{64}/sprout_deploy-[0-9.]+-py3-none-any\.whl", wheel)
    body = client("s3").get_object(Bucket="sprout-123456789012-eu-central-1", Key=wheel)["Body"].read()  # type: ignore[attr-defined]
    assert hashlib.sha256(body).hexdigest() == wheel.split("/")[2]


def test_deploy_without_a_stack_says_to_run_up_first(aws: str, app: Path) -> None:
    result = sprout("aws", "deploy", str(app), "--env", "prod")
    assert result.returncode == 2
    assert "stack sprout-hello-prod does not exist; run `sprout aws up` first" in result.stderr


def test_status_deploy_rollback_then_down_purge_leaves_nothing(aws: str, app: Path) -> None:
    refs = build_fleet(load_manifest(app / "sprout.toml"), OLD_SHA)
    stack_with_outputs(refs)
    s3 = client("s3")

    before = sprout("aws", "status", str(app), "--env", "prod")
    assert before.returncode == 0, before.stderr
    lines = before.stdout.splitlines()
    assert lines[0] == "stack sprout-hello-prod: CREATE_COMPLETE"
    # moto places both instances in the first subnet's zone.
    assert lines[1] == (
        f"  blue: weight 100, 2 running (min 2, max 4), bundle {OLD_SHA[:12]}; healthy per zone: eu-central-1a 2/2"
    )
    assert (
        lines[2]
        == "  green: weight 0, 0 running (min 0, max 4), bundle 111111111111; healthy per zone: no instances"
    )
    assert lines[3] == "  last release: none (no `sprout aws deploy` yet)"

    deployed = sprout("aws", "deploy", str(app), "--env", "prod", "--no-wait-hold")
    assert deployed.returncode == 0, deployed.stderr
    after = sprout("aws", "status", str(app), "--env", "prod").stdout.splitlines()
    assert after[1].startswith("  blue: weight 0, 2 running")
    assert after[2].startswith("  green: weight 100, 2 running (min 2, max 4), bundle ")
    assert after[3] == "  last release: 1 holding (v2 by bluegreen, blue -> green)"
    assert after[4] == "    release 1: release succeeded: v2 serves 100% of traffic"

    rolled = sprout("aws", "rollback", str(app), "--env", "prod")
    assert rolled.returncode == 0, rolled.stderr
    assert weights(refs) == {"blue": 100, "green": 0}

    planned = sprout("aws", "plan", str(app), "--env", "prod")  # leaves a change set behind
    assert planned.returncode == 0, planned.stderr
    cfn = client("cloudformation")
    assert cfn.list_change_sets(StackName="sprout-hello-prod")["Summaries"]  # type: ignore[attr-defined]
    log_bucket = cfn.describe_stack_resource(
        StackName="sprout-hello-prod", LogicalResourceId="AccessLogBucket"
    )[  # type: ignore[attr-defined]
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    s3.put_object(Bucket=log_bucket, Key="hello/prod/AWSLogs/1/elb.log", Body=b"GET /")  # type: ignore[attr-defined]

    down = sprout("aws", "down", str(app), "--env", "prod", "--purge", "--yes")
    assert down.returncode == 0, down.stderr
    assert "stack sprout-hello-prod: DELETE_COMPLETE" in down.stdout
    assert f"deleted access-log bucket {log_bucket} (1 object(s))" in down.stdout
    record = Path(os.environ["SPROUT_HOME"]).resolve() / "aws" / "sprout-hello-prod.db"
    assert f"deleted the release record {record}" in down.stdout and not record.exists()
    assert re.search(r"^change set sprout-\d{8}-\d{6}: deleted \(never executed\)$", down.stdout, re.M)
    live = [
        st
        for st in cfn.list_stacks()["StackSummaries"]  # type: ignore[attr-defined]
        if st["StackName"] == "sprout-hello-prod" and st["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert live == []
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="hello/").get("KeyCount") == 0  # type: ignore[attr-defined]
    assert log_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # type: ignore[attr-defined]
    changes = sprout(
        "aws", "plan", str(app), "--env", "prod"
    )  # a plan now is a fresh create, nothing left over
    assert "stack sprout-hello-prod: create," in changes.stdout


def test_an_aws_failure_is_one_line_naming_the_resource_and_the_next_step(aws: str, app: Path) -> None:
    refs = build_fleet(load_manifest(app / "sprout.toml"), OLD_SHA)
    stack_with_outputs(refs)
    client("elbv2").delete_listener(ListenerArn=refs.listener_arn)  # type: ignore[attr-defined]
    result = sprout("aws", "status", str(app), "--env", "prod")
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: stack sprout-hello-prod: ListenerNotFound: ")
    assert result.stderr.rstrip().endswith("; check the AWS credentials and region")


@pytest.mark.slow
def test_up_status_deploy_rollback_down_purge_on_the_whole_template(aws: str, app: Path) -> None:
    up = sprout("aws", "up", str(app), "--env", "prod", "--yes")

    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "stack sprout-hello-prod: CREATE_COMPLETE" in up.stdout
    cfn = client("cloudformation")
    outputs = {
        o["OutputKey"] for o in cfn.describe_stacks(StackName="sprout-hello-prod")["Stacks"][0]["Outputs"]
    }  # type: ignore[attr-defined]
    assert {"Url", "ListenerArn", "BlueGroup", "GreenGroup", "LogGroup"} <= outputs

    status = sprout("aws", "status", str(app), "--env", "prod")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == "stack sprout-hello-prod: CREATE_COMPLETE"
    assert lines[2].startswith("  blue: weight 100, 2 running (min 2, max 4), bundle ")
    assert lines[3].startswith("  green: weight 0, 0 running (min 0, max 4)")

    deployed = sprout("aws", "deploy", str(app), "--env", "prod", "--no-wait-hold")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    assert "weights: green 100, blue 0" in deployed.stdout
    rolled = sprout("aws", "rollback", str(app), "--env", "prod")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back: weights blue 100, green 0" in rolled.stdout

    down = sprout("aws", "down", str(app), "--env", "prod", "--purge", "--yes")
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert "stack sprout-hello-prod: DELETE_COMPLETE" in down.stdout
    assert re.search(
        r"deleted access-log bucket sprout-hello-prod-accesslogbucket-\w+ \(0 object\(s\)\)", down.stdout
    )
    live = [
        s
        for s in cfn.list_stacks()["StackSummaries"]  # type: ignore[attr-defined]
        if s["StackName"] == "sprout-hello-prod" and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert live == []
    s3 = client("s3")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="hello/").get("KeyCount") == 0  # type: ignore[attr-defined]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]  # type: ignore[attr-defined]
    # No change set is left to execute (moto keeps the executed one's record; AWS drops it with the stack).
    sets = cfn.list_change_sets(StackName="sprout-hello-prod")["Summaries"]  # type: ignore[attr-defined]
    assert [c["ExecutionStatus"] for c in sets] == ["EXECUTE_COMPLETE"]

"""`sprout aws deploy`, `rollback` and `up` as a user runs them, against moto.

moto cannot execute the full template, so the fleet is built in moto directly (`fleet_setup`) and a
small stack carries the outputs the commands discover it by — exactly the outputs `template.build`
declares.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sprout.providers.aws.context import COLOURS, title
from sprout.providers.aws.refs import StackRefs
from sprout.spec import load_manifest

from .conftest import client
from .fleet_setup import build_fleet
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
            "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/sprout/hello/prod"}}
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
    assert "blue is live, green takes over" in out
    assert "green: 2/2 InService and healthy" in out
    assert "weights: green 100, blue 0" in out
    assert out.strip().endswith(": holding")
    assert weights(refs) == {"blue": 0, "green": 100}
    assert sizes(refs) == {"blue": (2, 4, 2), "green": (2, 4, 2)}

    again = sprout("aws", "deploy", str(app), "--env", "prod")
    assert again.returncode == 3 and "resume it with `sprout aws deploy --resume`" in again.stderr

    rolled = sprout("aws", "rollback", str(app), "--env", "prod")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back: weights blue 100, green 0" in rolled.stdout
    assert weights(refs) == {"blue": 100, "green": 0}
    assert sizes(refs)["green"] == (0, 4, 0)


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

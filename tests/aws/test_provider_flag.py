"""`--provider aws` on the everyday commands runs the AWS provider's commands (issue 7's spelling)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sprout.spec import load_manifest

from .conftest import client
from .fleet_setup import BUCKET, build_fleet
from .helpers import DATA, ROOT, app_dir
from .test_cli_moto import stack_with_outputs


def sprout(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_render_provider_aws_is_the_aws_template() -> None:
    via_flag = sprout("render", str(app_dir("microsite")), "--provider", "aws", "--env", "prod")
    via_group = sprout("aws", "render", str(app_dir("microsite")), "--env", "prod")
    assert via_flag.returncode == 0, via_flag.stderr
    assert json.loads(via_flag.stdout) == json.loads(via_group.stdout)


def test_plan_provider_aws_creates_a_change_set(aws: str) -> None:
    result = sprout("plan", str(DATA / "minimal"), "--env", "prod", "--provider", "aws")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("stack sprout-tiny-prod: create, 40 change(s)")
    sets = client("cloudformation").list_change_sets(StackName="sprout-tiny-prod")["Summaries"]  # type: ignore[attr-defined]
    assert [s["Status"] for s in sets] == ["CREATE_COMPLETE"]


def test_an_unknown_provider_is_a_user_error() -> None:
    result = sprout("up", str(DATA / "minimal"), "--provider", "azure")
    assert result.returncode == 2
    assert "up: unknown --provider 'azure' (local, aws)" in result.stderr


def test_deploy_provider_aws_refuses_what_aws_cannot_do_and_keeps_the_options(aws: str) -> None:
    app = str(DATA / "full")
    for strategy in ("rolling", "rolling_with_batch", "immutable"):
        refused = sprout("deploy", app, "--env", "prod", "--provider", "aws", "--strategy", strategy)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(f"error: --strategy {strategy}: on AWS a release moves traffic")
        assert refused.stderr.rstrip().endswith("use bluegreen (or canary)")
    pinned = sprout("deploy", app, "--env", "prod", "--provider", "aws", "--version", "v3")
    assert pinned.returncode == 2
    assert pinned.stderr.startswith("error: --version v3: with --provider aws, deploy ships the app folder")
    # A strategy AWS can do goes on to the stack (none here: nothing was released anywhere).
    allowed = sprout("deploy", app, "--env", "prod", "--provider", "aws", "--strategy", "canary")
    assert allowed.returncode == 2
    assert "does not exist; run `sprout aws up` first" in allowed.stderr


def test_deploy_provider_aws_runs_the_test_gate_before_anything_is_uploaded(aws: str, tmp_path: Path) -> None:
    app = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", app)
    text = (
        (app / "sprout.toml")
        .read_text()
        .replace('name = "hello"\n', 'name = "hello"\ntest = "sh check.sh"\n')
    )
    (app / "sprout.toml").write_text(text + '\n[deploy]\nstrategy = "bluegreen"\n')
    (app / "check.sh").write_text("echo 'FAILED test_cart_total'\nexit 1\n")
    stack_with_outputs(build_fleet(load_manifest(app / "sprout.toml"), "1" * 64))
    done = sprout("deploy", str(app), "--env", "prod", "--provider", "aws")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: hello ")
    assert "the app's tests failed (`sh check.sh` exited 1 after " in done.stderr
    assert "  FAILED test_cart_total" in done.stderr
    listed = client("s3").list_objects_v2(Bucket=BUCKET, Prefix="hello/")  # type: ignore[attr-defined]
    assert listed.get("KeyCount") == 0

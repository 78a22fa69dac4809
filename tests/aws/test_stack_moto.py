"""`sprout aws render` and `plan` (a CloudFormation change set on moto), and the stack's apply/delete loop.

moto computes change sets for the whole template; apply and delete of the whole template run in
test_cli_moto, here on a small template of resources moto creates as they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sprout.providers.aws.stack import Stack, bucket_name, ensure_bucket

from .conftest import REGION, client
from .helpers import DATA, app_dir


def sprout(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_render_prints_the_template(tmp_path: object) -> None:
    result = sprout("aws", "render", str(app_dir("microsite")), "--env", "prod")
    assert result.returncode == 0, result.stderr
    template = json.loads(result.stdout)
    assert template["Resources"]["BlueGroup"]["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    assert template["Metadata"]["Sprout"]["env"] == "prod"


def test_render_rejects_a_broken_manifest_with_exit_code_2(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "sprout.toml").write_text('[app]\nname = "x1"\nweb = "run"\n[instances]\nsize = "huge"\n')
    result = sprout("aws", "render", str(folder))
    assert result.returncode == 2
    assert 'no instance type for size "huge"' in result.stderr


def test_plan_creates_a_change_set_and_prints_it(aws: str) -> None:
    result = sprout("aws", "plan", str(DATA / "minimal"), "--env", "prod", "--region", REGION)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("stack sprout-tiny-prod: create, 40 change(s) (change set sprout-")
    assert any(line.split() == ["+", "BlueGroup", "AWS::AutoScaling::AutoScalingGroup"] for line in lines)
    assert any(
        line.split() == ["+", "HttpListener", "AWS::ElasticLoadBalancingV2::Listener"] for line in lines
    )
    cfn = client("cloudformation")
    sets = cfn.list_change_sets(StackName="sprout-tiny-prod")["Summaries"]  # type: ignore[attr-defined]
    assert [s["Status"] for s in sets] == ["CREATE_COMPLETE"]
    # A plan changes nothing: no stack exists until it is applied.
    assert Stack(cfn, client("s3"), "sprout-tiny-prod", "b", "tiny").status() is None


def test_apply_reports_progress_and_delete_removes_the_stack(aws: str) -> None:
    s3 = client("s3")
    bucket = bucket_name("123456789012", REGION)
    assert ensure_bucket(s3, bucket, REGION) is True
    assert ensure_bucket(s3, bucket, REGION) is False
    template = {
        "Resources": {
            "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/sprout/t/prod"}}
        },
    }
    stack = Stack(client("cloudformation"), s3, "sprout-t-prod", bucket, "t")
    plan = stack.plan(template, poll=0.05)
    assert [(c.action, c.logical_id) for c in plan.changes] == [("Add", "LogGroup")]
    progress: list[str] = []
    assert stack.apply(plan, progress.append, poll=0.05) == "CREATE_COMPLETE"
    assert "sprout-t-prod CREATE_COMPLETE" in progress  # moto reports stack-level events only
    assert stack.delete(progress.append, poll=0.05) == "DELETE_COMPLETE"
    assert stack.status() is None
    assert s3.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]  # the bucket outlives the stack


def test_render_and_plan_refuse_an_address_of_this_machine_with_exit_2(aws: str, tmp_path: Path) -> None:
    (tmp_path / "sprout.toml").write_text(
        '[app]\nname = "tiny"\nweb = "python -m http.server $PORT"\n'
        '[env]\nREPORTS_URL = "http://localhost:9000/reports"\n'
    )
    message = (
        "[env] REPORTS_URL: localhost is this machine, not an address AWS can reach; remove it (the stack's "
        "DATABASE_URL and SESSION_STORE_URL come from its own services) or give a host the instances reach"
    )
    for command in ("render", "plan"):
        result = sprout("aws", command, str(tmp_path), "--env", "prod")
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
    assert client("cloudformation").list_stacks()["StackSummaries"] == []  # type: ignore[attr-defined]

"""`--provider aws` on the everyday commands runs the AWS provider's commands (issue 7's spelling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import client
from .helpers import DATA, app_dir


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

"""Acceptance 4: the instance role grants no `*` action and no resource wider than bundles, secret and log group."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import BUCKET, render

#: Per action, the resource lists it may be granted on (one alternative per statement).
ALLOWED = {
    "s3:GetObject": [
        [
            {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/{{app}}/bundles/*"},
            {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/{{app}}/sprout/*"},
        ]
    ],
    "cloudformation:SignalResource": [[{"Ref": "AWS::StackId"}]],
    # The one-off release instance reports its result there.
    "s3:PutObject": [[{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/{{app}}/releases/prod/*"}]],
    "logs:CreateLogStream": [[{"Fn::GetAtt": ["LogGroup", "Arn"]}]],
    "logs:PutLogEvents": [[{"Fn::GetAtt": ["LogGroup", "Arn"]}]],
    "secretsmanager:GetSecretValue": [
        [{"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}, {"Ref": "AppDatabaseSecret"}],
        [
            {
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
                "sprout/{app}/prod-??????"
            }
        ],
    ],
}


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of every IAM policy in the template (inline role policies and policy resources)."""
    found: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found.extend(policy["PolicyDocument"]["Statement"])
            # Session Manager's managed policy only when `[aws] ssm` opts in.
            assert props.get("ManagedPolicyArns", []) in (
                [],
                [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}],
            )
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.extend(props["PolicyDocument"]["Statement"])
    return found


@pytest.mark.parametrize("app", ["microsite", "lottery", "campaign", "minimal", "full"])
def test_instance_role_is_least_privilege(app: str) -> None:
    template = render(app)
    found = statements(template)
    assert found, "the instance role has no policy"
    granted: set[str] = set()
    for statement in found:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
            assert action in ALLOWED, f"unexpected action {action}"
            name = template["Metadata"]["Sprout"]["app"]
            expected = [
                [{"Fn::Sub": r["Fn::Sub"].replace("{app}", name)} if "Fn::Sub" in r else r for r in option]
                for option in ALLOWED[action]
            ]
            assert statement["Resource"] in expected, f"{action} on {statement['Resource']}"
            granted.add(action)
    assert {"s3:GetObject", "logs:PutLogEvents", "logs:CreateLogStream"} <= granted
    reads_secrets = "Database" in template["Resources"] or bool(app_secrets(template))
    assert ("secretsmanager:GetSecretValue" in granted) == reads_secrets


def app_secrets(template: dict[str, Any]) -> list[str]:
    """The `[secrets]` names the boot config of the template carries."""
    script = template["Resources"]["BlueLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    text = script["Fn::Base64"]["Fn::Sub"]
    boot = json.loads(text.split("<<'SPROUT_BOOT_JSON'\n", 1)[1].split("\nSPROUT_BOOT_JSON", 1)[0])
    names: list[str] = boot["secret_names"]
    return names


def test_app_secrets_are_readable_only_by_name_of_this_environment() -> None:
    template = render("lottery")
    assert app_secrets(template) == ["LOTTERY_ADMIN_TOKEN"]
    sids = [s["Sid"] for s in statements(template)]
    assert "ReadAppSecrets" in sids
    app_secret = next(s for s in statements(template) if s["Sid"] == "ReadAppSecrets")
    assert app_secret["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
            "sprout/lottery/prod-??????"
        }
    ]


def test_role_is_assumable_by_ec2_only() -> None:
    role = render("full")["Resources"]["InstanceRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}
    ]

"""The rendered CloudFormation templates: cfn-lint clean, golden snapshots, and the properties that matter."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from sprout.errors import UserError
from sprout.providers.aws import template_json
from sprout.providers.aws.boot import instance_spec
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.imds import Identity
from sprout.providers.aws.userdata import with_bundle
from sprout.providers.base import InstanceSpec
from sprout.spec import parse_manifest

from .helpers import GOLDEN, SHA, regenerate, render

APPS = ["microsite", "lottery", "campaign", "minimal", "full"]


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


@pytest.mark.parametrize("app", APPS)
def test_template_passes_cfn_lint_with_no_errors(app: str) -> None:
    template = render(app)
    region = "eu-west-1" if app == "full" else "eu-central-1"
    matches = lint(template_json(template), config=ManualArgs(regions=[region]))
    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


@pytest.mark.parametrize("app", APPS)
def test_template_matches_golden_snapshot(app: str) -> None:
    text = template_json(render(app)) + "\n"
    golden = GOLDEN / f"{app}.json"
    if regenerate() or not golden.exists():
        golden.write_text(text)
    assert text == golden.read_text(), (
        f"template changed; rerun with SPROUT_UPDATE_GOLDEN=1 if intended ({golden})"
    )


def test_listener_forwards_to_blue_and_green_with_weights() -> None:
    template = render("microsite")
    listener = template["Resources"]["HttpListener"]["Properties"]
    groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert groups == [
        {"TargetGroupArn": {"Ref": "BlueTargetGroup"}, "Weight": 100},
        {"TargetGroupArn": {"Ref": "GreenTargetGroup"}, "Weight": 0},
    ]
    green_live = render("microsite", live="green")["Resources"]["HttpListener"]["Properties"]
    weights = [g["Weight"] for g in green_live["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]]
    assert weights == [0, 100]


def test_target_groups_take_health_check_and_drain_from_manifest() -> None:
    template = render("full")
    for name in ("BlueTargetGroup", "GreenTargetGroup"):
        props = template["Resources"][name]["Properties"]
        assert props["HealthCheckPath"] == "/healthz"
        assert props["HealthCheckIntervalSeconds"] == 10
        assert props["HealthCheckTimeoutSeconds"] == 3
        assert {"Key": "deregistration_delay.timeout_seconds", "Value": "20"} in props[
            "TargetGroupAttributes"
        ]


def test_https_listener_when_a_certificate_is_given_and_http_redirects() -> None:
    template = render("full")
    https = template["Resources"]["HttpsListener"]["Properties"]
    assert https["Protocol"] == "HTTPS" and https["Port"] == 443
    redirect = template["Resources"]["HttpListener"]["Properties"]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert template["Outputs"]["ListenerArn"]["Value"] == {"Ref": "HttpsListener"}


def test_one_auto_scaling_group_per_colour_idle_at_zero() -> None:
    template = render("campaign")
    blue = template["Resources"]["BlueGroup"]["Properties"]
    green = template["Resources"]["GreenGroup"]["Properties"]
    assert (blue["MinSize"], blue["MaxSize"]) == ("2", "12")
    assert green["MinSize"] == "0"
    # Desired capacity starts at min and is left to autoscaling: a stack update never resets it.
    assert "DesiredCapacity" not in blue and "DesiredCapacity" not in green
    assert blue["HealthCheckGracePeriod"] == 300
    for group in (blue, green):
        assert group["HealthCheckType"] == "ELB"
        assert len(group["VPCZoneIdentifier"]) == 2
    assert blue["TargetGroupARNs"] == [{"Ref": "BlueTargetGroup"}]


def test_user_data_installs_pinned_sprout_and_runs_the_agent_on_the_s3_bundle() -> None:
    template = render("microsite")
    data = template["Resources"]["BlueLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    script = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert 'pip install --quiet "sprout==0.0.0-test"' in script
    assert f"BUNDLE_SHA256={SHA}" in script
    assert "sprout aws boot --config /etc/sprout/boot.json --bundle-sha256 $BUNDLE_SHA256" in script
    boot = json.loads(script.split("<<'SPROUT_BOOT_JSON'\n", 1)[1].split("\nSPROUT_BOOT_JSON", 1)[0])
    assert boot["store_url"] == "s3://sprout-123456789012-eu-central-1/microsite"
    assert boot["log_group"] == "${LogGroup}"
    assert boot["sessions"] == {
        "engine": "memcached",
        "discovery": "${SessionCache.ConfigurationEndpoint.Address}:${SessionCache.ConfigurationEndpoint.Port}",
    }
    # The microsite names an external database by url: no RDS, the url is passed through.
    assert boot["database"] is None and boot["env_vars"]["DATABASE_URL"].startswith("mysql://")
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    # The agent on the instance reuses the dependency layer the manifest keys, as on one machine.
    config = BootConfig.from_json(boot)
    spec = instance_spec(config, SHA, Identity("i-0abc", "eu-central-1a"), session_url=None)
    assert (boot["install_inputs"], spec.install_inputs) == (["requirements.txt"], ("requirements.txt",))
    assert InstanceSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_a_new_bundle_replaces_only_the_bundle_line() -> None:
    script = "#!/bin/bash\nBUNDLE_SHA256=" + SHA + "\necho $BUNDLE_SHA256\n"
    assert (
        with_bundle(script, "a" * 64) == "#!/bin/bash\nBUNDLE_SHA256=" + "a" * 64 + "\necho $BUNDLE_SHA256\n"
    )
    with pytest.raises(UserError, match="no BUNDLE_SHA256 line"):
        with_bundle("#!/bin/bash\n", "a" * 64)


def test_scaling_tracks_alb_requests_per_target_and_schedules_the_live_colour() -> None:
    template = render("full")
    policy = template["Resources"]["BlueTargetTracking"]["Properties"]["TargetTrackingConfiguration"]
    assert policy["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    assert policy["TargetValue"] == 3000.0  # 50 requests/s per instance = 3000 per minute
    assert "GreenTargetTracking" in template["Resources"]
    assert "BluePredictive" in template["Resources"]
    schedule = template["Resources"]["Schedule1"]["Properties"]
    assert schedule == {
        "AutoScalingGroupName": {"Ref": "BlueGroup"},
        "Recurrence": "30 19 * 6 *",
        "MinSize": 8,
    }


def test_memcached_spans_zones_and_rds_is_multi_az_with_a_managed_secret() -> None:
    template = render("full")
    cache = template["Resources"]["SessionCache"]
    assert cache["Type"] == "AWS::ElastiCache::CacheCluster"
    assert cache["Properties"]["AZMode"] == "cross-az" and cache["Properties"]["NumCacheNodes"] == 2
    db = template["Resources"]["Database"]
    assert db["Properties"]["MultiAZ"] is True and db["Properties"]["ManageMasterUserPassword"] is True
    assert db["DeletionPolicy"] == "Snapshot"
    assert "MasterUserPassword" not in db["Properties"]


def test_redis_sessions_are_a_multi_az_replication_group() -> None:
    cache = render("campaign")["Resources"]["SessionCache"]
    assert cache["Type"] == "AWS::ElastiCache::ReplicationGroup"
    assert (
        cache["Properties"]["MultiAZEnabled"] is True
        and cache["Properties"]["AutomaticFailoverEnabled"] is True
    )
    assert cache["Properties"]["Engine"] == "redis"


def test_security_groups_admit_only_the_tier_in_front() -> None:
    template = render("full")
    instance = template["Resources"]["InstanceSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert instance == [
        {
            "FromPort": 8080,
            "ToPort": 8080,
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {"Fn::GetAtt": ["LoadBalancerSecurityGroup", "GroupId"]},
        }
    ]
    for name, port in (("CacheFromInstances", 11211), ("DatabaseFromInstances", 3306)):
        rule = template["Resources"][name]["Properties"]
        assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": ["InstanceSecurityGroup", "GroupId"]}
        assert rule["FromPort"] == rule["ToPort"] == port
    for name in ("CacheSecurityGroup", "DatabaseSecurityGroup"):
        assert "SecurityGroupIngress" not in template["Resources"][name]["Properties"]


def test_log_group_retention_rounds_up_to_an_accepted_value() -> None:
    assert render("full")["Resources"]["LogGroup"]["Properties"]["RetentionInDays"] == 14
    assert (
        render("campaign")["Resources"]["LogGroup"]["Properties"]["LogGroupName"] == "/sprout/campaign/prod"
    )


def test_route53_aliases_hosts_in_the_zone_and_cloudfront_fronts_the_alb() -> None:
    template = render("full")
    records = resources(template, "AWS::Route53::RecordSet")
    assert sorted(r["Properties"]["Name"] for r in records.values()) == [
        "shop.example.com",
        "www.example.com",
    ]
    for record in records.values():
        assert record["Properties"]["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["Cdn", "DomainName"]}
    cdn = template["Resources"]["Cdn"]["Properties"]["DistributionConfig"]
    assert cdn["Origins"][0]["DomainName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}
    assert cdn["Aliases"] == ["shop.example.com", "www.example.com"]
    assert template["Outputs"]["Url"]["Value"] == "https://shop.example.com"


def test_outputs_name_url_bucket_and_log_group() -> None:
    outputs = render("minimal")["Outputs"]
    assert {"Url", "Bucket", "LogGroup", "ListenerArn", "BlueGroup", "GreenGroup"} <= set(outputs)
    assert outputs["Url"]["Value"] == {"Fn::Sub": "http://${LoadBalancer.DNSName}"}


def test_created_vpc_has_public_and_private_subnets_in_two_zones() -> None:
    template = render("minimal")
    subnets = resources(template, "AWS::EC2::Subnet")
    assert sorted(subnets) == ["PrivateSubnet1", "PrivateSubnet2", "PublicSubnet1", "PublicSubnet2"]
    zones = {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets.values()}
    assert len(zones) == 2


def test_existing_network_is_used_as_given() -> None:
    m = parse_manifest(
        {
            "app": {"name": "tiny", "web": "x"},
            "aws": {"vpc_id": "vpc-0abc", "subnets": ["subnet-01", "subnet-02"]},
        }
    )
    from sprout.providers.aws import render_template

    template = render_template(m, "prod", SHA, "bucket-x", "0")
    assert "Vpc" not in template["Resources"]
    assert template["Resources"]["BlueGroup"]["Properties"]["VPCZoneIdentifier"] == ["subnet-01", "subnet-02"]
    bad = parse_manifest({"app": {"name": "tiny", "web": "x"}, "aws": {"subnets": ["subnet-01"]}})
    with pytest.raises(
        UserError, match=r"\[aws\]: an existing network needs vpc_id and at least two subnets"
    ):
        render_template(bad, "prod", SHA, "bucket-x", "0")


def test_unknown_instance_size_is_a_user_error() -> None:
    m = parse_manifest({"app": {"name": "tiny", "web": "x"}, "instances": {"size": "huge"}})
    from sprout.providers.aws import render_template

    with pytest.raises(UserError, match=r'no instance type for size "huge"'):
        render_template(m, "prod", SHA, "bucket-x", "0")


def test_user_data_is_valid_base64_input_and_within_the_16k_limit() -> None:
    script = render("full")["Resources"]["BlueLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    text = script["Fn::Base64"]["Fn::Sub"]
    assert len(base64.b64encode(text.encode())) < 16 * 1024


def test_an_external_url_with_a_password_is_refused_not_half_done() -> None:
    m = parse_manifest(
        {
            "app": {"name": "tiny", "web": "x"},
            "resources": {"database": {"engine": "mysql", "url": "mysql://u@db/x", "password": "env:P"}},
        }
    )
    from sprout.providers.aws import render_template

    with pytest.raises(UserError) as caught:
        render_template(m, "prod", SHA, "bucket-x", "0")
    assert str(caught.value) == (
        "[resources.database] password: the aws provider does not carry an external url's password yet; "
        "leave out url and password (Sprout then creates it on RDS, with a managed secret)"
    )

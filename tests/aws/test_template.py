"""The rendered CloudFormation templates: cfn-lint clean, golden snapshots, and the properties that matter."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from sprout.errors import ManifestError, UserError
from sprout.providers.aws import render_template, template_json
from sprout.providers.aws.boot import instance_spec
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.imds import Identity
from sprout.providers.aws.userdata import with_bundle
from sprout.providers.aws.wheels import Runtime
from sprout.providers.base import InstanceSpec
from sprout.spec import parse_manifest

from .helpers import GOLDEN, RUNTIME, SHA, manifest, regenerate, render

APPS = ["microsite", "lottery", "campaign", "minimal", "full", "acm"]
REGIONS = {"full": "eu-west-1", "acm": "us-east-1"}


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


@pytest.mark.parametrize("app", APPS)
def test_template_passes_cfn_lint_with_no_errors(app: str) -> None:
    template = render(app)
    region = REGIONS.get(app, "eu-central-1")
    matches = lint(template_json(template), config=ManualArgs(regions=[region]))
    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


@pytest.mark.parametrize("app", APPS)
def test_template_matches_golden_snapshot(app: str) -> None:
    text = template_json(render(app)) + "\n"
    golden = GOLDEN / f"{app}.json"
    if regenerate():
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; write it with SPROUT_UPDATE_GOLDEN=1 and review it"
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
    assert blue["HealthCheckGracePeriod"] == 600
    for group in (blue, green):
        assert group["HealthCheckType"] == "ELB"
        assert len(group["VPCZoneIdentifier"]) == 2
    assert blue["TargetGroupARNs"] == [{"Ref": "BlueTargetGroup"}]


def user_data(template: dict[str, Any], colour: str = "Blue") -> str:
    data = template["Resources"][f"{colour}LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    text: str = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    return text


def test_user_data_installs_sprout_from_the_store_verified_and_never_by_name() -> None:
    template = render("microsite")
    script = user_data(template)
    # The one pip of Sprout's own, offline from the fetched wheelhouse; nothing names a package to an index.
    pip_lines = [line for line in script.splitlines() if 'bin/pip" install' in line]
    assert "sprout==" not in script and "sprout-deploy" not in script
    assert pip_lines == [
        'PIP_CONFIG_FILE=/dev/null "$ROOT/opt/sprout/bin/pip" install --quiet --no-index --disable-pip-version-check \\'
    ]
    assert f"BUNDLE_SHA256={SHA}" in script
    assert f"SPROUT_WHEEL={RUNTIME.wheel_key}" in script
    assert f"SPROUT_WHEEL_SHA256={RUNTIME.wheel_sha256}" in script
    assert f"SPROUT_WHEELHOUSE_SHA256={RUNTIME.wheelhouse_sha256}" in script
    fetches = [line for line in script.splitlines() if line.startswith("fetch ")]
    assert fetches == [
        'fetch "$SPROUT_WHEEL" "$SPROUT_WHEEL_SHA256" "$WHEEL_FILE"',
        'fetch "$SPROUT_WHEELHOUSE" "$SPROUT_WHEELHOUSE_SHA256" "$STATE/wheels/wheelhouse.tar"',
        'fetch "bundles/$BUNDLE_SHA256.tar.gz" "$BUNDLE_SHA256" "$STATE/store/bundles/$BUNDLE_SHA256.tar.gz"',
    ]
    assert 'if ! echo "$2  $3" | sha256sum --check --quiet -; then' in script
    assert 'exec > >(tee -a "$BOOT_LOG") 2>&1' in script and "trap on_exit EXIT" in script
    assert '--data-urlencode "LogicalResourceId=BlueGroup"' in script
    assert '--data-urlencode "LogicalResourceId=GreenGroup"' in user_data(template, "Green")
    boot = json.loads(script.split("<<'SPROUT_BOOT_JSON'\n", 1)[1].split("\nSPROUT_BOOT_JSON", 1)[0])
    assert boot["store_url"] == "s3://sprout-123456789012-eu-central-1/microsite"
    assert boot["log_group"] == "${LogGroup}"
    assert boot["sessions"] == {
        "engine": "memcached",
        "discovery": "${SessionCache.ConfigurationEndpoint.Address}:${SessionCache.ConfigurationEndpoint.Port}",
    }
    # The microsite's local database url stays on one machine: on AWS the stack's RDS provides it.
    assert boot["database"]["host"] == "${Database.Endpoint.Address}"
    assert "DATABASE_URL" not in boot["env_vars"]
    assert (
        template["Resources"]["BlueLaunchTemplate"]["Properties"]["LaunchTemplateData"]["MetadataOptions"][
            "HttpTokens"
        ]
        == "required"
    )
    # The agent on the instance reuses the dependency layer the manifest keys, as on one machine.
    config = BootConfig.from_json(boot)
    spec = instance_spec(config, SHA, Identity("i-0abc", "eu-central-1a"), session_url=None)
    assert (boot["install_inputs"], spec.install_inputs) == (["requirements.txt"], ("requirements.txt",))
    assert InstanceSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize("app", APPS)
def test_no_address_of_this_machine_reaches_the_template(app: str) -> None:
    text = template_json(render(app))
    assert "127.0.0.1" not in text and "localhost" not in text


def test_a_new_bundle_replaces_only_the_bundle_line() -> None:
    script = "#!/bin/bash\nBUNDLE_SHA256=" + SHA + "\necho $BUNDLE_SHA256\n"
    assert (
        with_bundle(script, "a" * 64) == "#!/bin/bash\nBUNDLE_SHA256=" + "a" * 64 + "\necho $BUNDLE_SHA256\n"
    )
    full = user_data(render("minimal")).replace("${!", "${")
    newer = Runtime("python3.11", "sprout/k1/w.whl", "8" * 64, "sprout/k2/wheelhouse.tar", "9" * 64)
    moved = with_bundle(full, "a" * 64, newer)
    assert [line for line in moved.splitlines() if line.startswith(("SPROUT_WHEEL", "BUNDLE_"))] == [
        "BUNDLE_SHA256=" + "a" * 64,
        "SPROUT_WHEEL=sprout/k1/w.whl",
        "SPROUT_WHEEL_SHA256=" + "8" * 64,
        "SPROUT_WHEELHOUSE=sprout/k2/wheelhouse.tar",
        "SPROUT_WHEELHOUSE_SHA256=" + "9" * 64,
    ]
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
    # The app's own login: a generated password in its own secret; instances learn both secrets' ARNs.
    app_secret = template["Resources"]["AppDatabaseSecret"]
    generate = app_secret["Properties"]["GenerateSecretString"]
    assert json.loads(generate["SecretStringTemplate"]) == {"username": "shop_app"}
    assert generate["GenerateStringKey"] == "password" and generate["ExcludePunctuation"] is True
    policy = template["Resources"]["InstanceRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    read = next(s for s in policy["Statement"] if s["Sid"] == "ReadDatabaseSecrets")
    assert read["Resource"] == [
        {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]},
        {"Ref": "AppDatabaseSecret"},
    ]


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
            "Description": "the app port, from the load balancer",
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
    template = render_template(m, "prod", SHA, "bucket-x", "0", RUNTIME)
    assert "Vpc" not in template["Resources"]
    assert template["Resources"]["BlueGroup"]["Properties"]["VPCZoneIdentifier"] == ["subnet-01", "subnet-02"]
    bad = parse_manifest({"app": {"name": "tiny", "web": "x"}, "aws": {"subnets": ["subnet-01"]}})
    with pytest.raises(
        UserError, match=r"\[aws\]: an existing network needs vpc_id and at least two subnets"
    ):
        render_template(bad, "prod", SHA, "bucket-x", "0", RUNTIME)


def test_unknown_instance_size_is_a_user_error() -> None:
    m = parse_manifest({"app": {"name": "tiny", "web": "x"}, "instances": {"size": "huge"}})
    with pytest.raises(UserError, match=r'no instance type for size "huge"'):
        render_template(m, "prod", SHA, "bucket-x", "0", RUNTIME)


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
    with pytest.raises(UserError) as caught:
        render_template(m, "prod", SHA, "bucket-x", "0", RUNTIME)
    assert str(caught.value) == (
        "[resources.database] password: the aws provider does not carry an external url's password yet; "
        "leave out url and password (Sprout then creates it on RDS, with a managed secret)"
    )


def test_live_group_waits_for_boot_signals_and_rolls_on_launch_template_changes() -> None:
    template = render("microsite")
    blue, green = template["Resources"]["BlueGroup"], template["Resources"]["GreenGroup"]
    assert blue["CreationPolicy"] == {"ResourceSignal": {"Count": 2, "Timeout": "PT15M"}}
    assert "CreationPolicy" not in green  # the idle colour starts with no instance to wait for
    assert blue["UpdatePolicy"] == {
        "AutoScalingRollingUpdate": {
            "MaxBatchSize": 1,
            "MinInstancesInService": 2,
            "PauseTime": "PT15M",
            "WaitOnResourceSignals": True,
        }
    }
    assert blue["Properties"]["LaunchTemplate"]["Version"] == {
        "Fn::GetAtt": ["BlueLaunchTemplate", "LatestVersionNumber"]
    }
    statements = template["Resources"]["InstanceRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    signal = next(s for s in statements if s["Sid"] == "SignalBoot")
    assert signal["Action"] == ["cloudformation:SignalResource"] and signal["Resource"] == [
        {"Ref": "AWS::StackId"}
    ]


def test_alb_and_cloudfront_take_their_own_certificates() -> None:
    template = render("full")
    https = template["Resources"]["HttpsListener"]["Properties"]
    assert https["Certificates"] == [
        {"CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/1a2b3c4d"}
    ]
    viewer = template["Resources"]["Cdn"]["Properties"]["DistributionConfig"]["ViewerCertificate"]
    assert viewer["AcmCertificateArn"] == "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c"
    m = manifest("minimal").model_dump()
    m["aws"]["certificate_arn"] = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c"
    with pytest.raises(ManifestError, match=r"certificate_arn must be an ACM certificate in eu-central-1"):
        parse_manifest(m)


def test_a_created_certificate_is_dns_validated_in_the_zone_and_serves_alb_and_cloudfront() -> None:
    template = render("acm")
    cert = template["Resources"]["Certificate"]
    assert cert["Type"] == "AWS::CertificateManager::Certificate"
    props = cert["Properties"]
    assert (props["DomainName"], props["SubjectAlternativeNames"]) == (
        "shop.example.com",
        ["www.example.com"],
    )
    assert props["ValidationMethod"] == "DNS"
    assert props["DomainValidationOptions"] == [
        {"DomainName": host, "HostedZoneId": "Z0123456789ABCDEFGHIJ"}
        for host in ("shop.example.com", "www.example.com")
    ]
    https = template["Resources"]["HttpsListener"]["Properties"]
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "Certificate"}}]
    # In us-east-1 the same certificate serves CloudFront.
    viewer = template["Resources"]["Cdn"]["Properties"]["DistributionConfig"]["ViewerCertificate"]
    assert viewer["AcmCertificateArn"] == {"Ref": "Certificate"}
    m = manifest("acm").model_dump()
    m["aws"]["hosted_zone_id"] = None
    with pytest.raises(ManifestError, match=r"create_certificate needs hosted_zone and hosted_zone_id"):
        parse_manifest(m)
    m = manifest("acm").model_dump()
    m["router"]["hosts"] = ["shop.example.net"]
    with pytest.raises(UserError, match=r"none of \[router\] hosts is in hosted_zone 'example.com'"):
        render_template(parse_manifest(m), "prod", SHA, "bucket-x", "0", RUNTIME)


def test_with_a_certificate_only_https_reaches_the_load_balancer() -> None:
    m = manifest("minimal").model_dump()
    m["aws"]["certificate_arn"] = "arn:aws:acm:eu-central-1:123456789012:certificate/0f1e2d3c"
    template = render_template(parse_manifest(m), "prod", SHA, "bucket-x", "0", RUNTIME)
    listeners = resources(template, "AWS::ElasticLoadBalancingV2::Listener")
    assert sorted(listeners) == ["HttpsListener"]
    ingress = template["Resources"]["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [(r["FromPort"], r["Description"]) for r in ingress] == [(443, "HTTPS from anywhere")]
    # The opt-in redirect (the full example) opens 80 for the redirect only, and says so.
    full = render("full")
    redirect = full["Resources"]["HttpListener"]["Properties"]["DefaultActions"][0]
    assert redirect["RedirectConfig"] == {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}
    assert full["Resources"]["LoadBalancerSecurityGroup"]["Metadata"]["checkov"]["skip"] == [
        {"id": "CKV_AWS_260", "comment": "HTTP from anywhere, answered only with a redirect to HTTPS"}
    ]


def test_access_logs_kms_log_group_and_ssm_opt_in() -> None:
    template = render("full")
    attributes = {
        a["Key"]: a["Value"]
        for a in template["Resources"]["LoadBalancer"]["Properties"]["LoadBalancerAttributes"]
    }
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == {"Ref": "AccessLogBucket"}
    policy = template["Resources"]["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::156460612806:root"}}
    assert template["Resources"]["AccessLogBucket"]["DeletionPolicy"] == "Retain"
    group = template["Resources"]["LogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["LogKey", "Arn"]}
    assert template["Resources"]["LogKey"]["Properties"]["EnableKeyRotation"] is True
    role = template["Resources"]["InstanceRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    ]
    assert "ManagedPolicyArns" not in render("microsite")["Resources"]["InstanceRole"]["Properties"]


def test_a_local_address_in_env_is_refused_naming_the_key() -> None:
    m = manifest("minimal").model_dump()
    m["env"] = {"CACHE_URL": "redis://127.0.0.1:6379/0"}
    with pytest.raises(UserError) as caught:
        render_template(parse_manifest(m), "prod", SHA, "bucket-x", "0", RUNTIME)
    assert str(caught.value) == (
        "[env] CACHE_URL: 127.0.0.1 is this machine, not an address AWS can reach; remove it (the stack's "
        "DATABASE_URL and SESSION_STORE_URL come from its own services) or give a host the instances reach"
    )


def test_a_health_path_with_shell_characters_reaches_the_boot_script_as_data_never_as_code() -> None:
    # `$`, `(`, `)` are legal in a request path; the boot script runs as root. `$(echo)` run as code
    # would vanish from the value.
    path = "/p$(echo)q;a=(1)&b='2'"
    m = parse_manifest({"app": {"name": "tiny", "web": "x"}, "health": {"path": path}})
    script = user_data(render_template(m, "prod", SHA, "bucket-x", "0", RUNTIME))
    (line,) = [line for line in script.splitlines() if line.startswith("HEALTH_PATH=")]
    shown = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$HEALTH_PATH"'], capture_output=True, text=True, check=True
    )
    assert shown.stdout == path
    assert script.count("$HEALTH_PATH") == 3
    # Elsewhere only inside boot.json's quoted here-document, which the shell does not expand.
    assert [text for text in script.splitlines() if path in text and text != line] == [
        f'  "health_path": {json.dumps(path)},'
    ]
    assert "<<'SPROUT_BOOT_JSON'" in script

"""The whole CloudFormation template of one environment, assembled from the small builders beside it."""

from __future__ import annotations

import json
from typing import Any

from troposphere import GetAtt, Output, Ref, Sub, Template

from sprout.providers.aws.certificate import add_certificate, zone_hosts
from sprout.providers.aws.context import COLOURS, Colour, RenderContext, title
from sprout.providers.aws.data import add_data
from sprout.providers.aws.dns_cdn import add_cdn, add_dns, cdn_serves_hosts
from sprout.providers.aws.fleet import add_fleet
from sprout.providers.aws.iam import add_instance_role
from sprout.providers.aws.loadbalancer import add_load_balancer
from sprout.providers.aws.local import check_no_local_addresses
from sprout.providers.aws.loggroup import add_log_group
from sprout.providers.aws.network import add_network
from sprout.providers.aws.scaling import add_scaling
from sprout.providers.aws.security import add_security_groups
from sprout.providers.aws.wheels import Runtime
from sprout.spec import Manifest


def build(ctx: RenderContext) -> Template:
    """The troposphere Template for `ctx`."""
    t = Template(
        Description=f"Sprout environment {ctx.app}/{ctx.env} (rendered by sprout {ctx.sprout_version})"
    )
    t.set_metadata(
        {
            "Sprout": {
                "app": ctx.app,
                "env": ctx.env,
                "bundle_sha256": ctx.version_sha256,
                "sprout_wheel_sha256": ctx.runtime.wheel_sha256,
                "wheelhouse_sha256": ctx.runtime.wheelhouse_sha256,
                "live": ctx.live,
                "manifest_sha256": ctx.manifest.digest(),
            }
        }
    )
    network = add_network(t, ctx)
    groups = add_security_groups(t, ctx, network)
    add_certificate(t, ctx)
    lb = add_load_balancer(t, ctx, network, groups)
    log_group = add_log_group(t, ctx)
    data = add_data(t, ctx, network, groups)
    profile = add_instance_role(t, ctx, log_group, data.secret_arns)
    fleet = add_fleet(t, ctx, network, groups, lb, profile, data)
    add_scaling(t, ctx, lb, fleet)
    cdn = add_cdn(t, ctx, lb)
    add_dns(t, ctx, lb, cdn)

    scheme = "https" if ctx.manifest.aws.https else "http"
    hosts = zone_hosts(ctx)
    if hosts and (cdn is None or cdn_serves_hosts(ctx)):
        url: object = f"{scheme}://{hosts[0]}"
    elif cdn is not None:
        url = Sub("https://${Cdn.DomainName}")
    else:
        url = Sub(f"{scheme}://${{LoadBalancer.DNSName}}")
    outputs: dict[str, tuple[object, str]] = {
        "Url": (url, "Where the app answers"),
        "Bucket": (ctx.bundle_bucket, "The bundle bucket"),
        "StoreUrl": (ctx.store_url, "The artifact store the instances fetch bundles from"),
        "LogGroup": (Ref(log_group), "The CloudWatch Logs group of the instances"),
        "ListenerArn": (Ref(lb.listener), "The listener whose weights a deploy moves"),
    }
    if cdn is not None:
        outputs["CdnDomain"] = (GetAtt(cdn, "DomainName"), "The CloudFront domain")
    for colour in COLOURS:
        outputs[f"{title(colour)}TargetGroup"] = (Ref(lb.target_groups[colour]), f"The {colour} target group")
        outputs[f"{title(colour)}Group"] = (Ref(fleet.groups[colour]), f"The {colour} Auto Scaling group")
        outputs[f"{title(colour)}LaunchTemplate"] = (
            Ref(fleet.launch_templates[colour]),
            f"The {colour} launch template",
        )
    for name, (value, description) in outputs.items():
        t.add_output(Output(name, Value=value, Description=description))
    return t


def render_template(
    manifest: Manifest,
    env: str,
    version_sha256: str,
    bundle_bucket: str,
    sprout_version: str,
    runtime: Runtime,
    live: Colour = "blue",
) -> dict[str, Any]:
    """The CloudFormation template (a JSON-ready dict) that runs `manifest` as environment `env` on AWS."""
    check_no_local_addresses(manifest)
    ctx = RenderContext(manifest, env, version_sha256, bundle_bucket, sprout_version, runtime, live)
    template: dict[str, Any] = build(ctx).to_dict()
    return template


def template_json(template: dict[str, Any], indent: int | None = 2) -> str:
    """The template as JSON text (sorted keys, so renders diff cleanly)."""
    return json.dumps(template, indent=indent, sort_keys=True)

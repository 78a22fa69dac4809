"""User data: the shell script an EC2 instance runs at first boot to install Sprout and start the agent."""

from __future__ import annotations

import json
import re

from troposphere import Base64, Sub

from sprout.errors import UserError
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.context import APP_PORT, RenderContext
from sprout.providers.aws.data import DataRefs
from sprout.providers.aws.secrets import secret_name

BUNDLE_LINE = re.compile(r"^BUNDLE_SHA256=[0-9a-f]{64}$", re.MULTILINE)

SCRIPT = """#!/bin/bash
# Sprout bootstrap for {app}/{env}: install Python and Sprout {sprout_version}, then run the agent on the bundle.
set -euo pipefail
BUNDLE_SHA256={sha256}
dnf install -y python3.11 python3.11-pip
python3.11 -m venv /opt/sprout
/opt/sprout/bin/pip install --quiet "sprout=={sprout_version}"
id sprout >/dev/null 2>&1 || useradd --system --home-dir /var/lib/sprout --create-home sprout
install -d -m 0755 /etc/sprout
cat > /etc/sprout/boot.json <<'SPROUT_BOOT_JSON'
{boot_json}
SPROUT_BOOT_JSON
cat > /etc/systemd/system/sprout.service <<SPROUT_UNIT
[Unit]
Description=Sprout agent for {app}/{env}
Wants=network-online.target
After=network-online.target

[Service]
User=sprout
Environment=AWS_DEFAULT_REGION={region}
ExecStart=/opt/sprout/bin/sprout aws boot --config /etc/sprout/boot.json --bundle-sha256 $BUNDLE_SHA256
KillMode=mixed
TimeoutStopSec={stop_timeout}

[Install]
WantedBy=multi-user.target
SPROUT_UNIT
systemctl daemon-reload
systemctl enable --now sprout.service
"""


def _literal(text: str) -> str:
    """`text` made safe inside Fn::Sub (a literal `${` is written `${!`)."""
    return text.replace("${", "${!")


def boot_config(ctx: RenderContext, data: DataRefs) -> BootConfig:
    """The boot config of this environment's instances; values may hold `${Resource.Attr}` placeholders."""
    manifest = ctx.manifest
    env_vars = {name: _literal(value) for name, value in manifest.env.items()}
    resources = manifest.resources
    for table, resource, managed in (
        ("database", resources.database, "RDS, with a managed secret"),
        ("sessions", resources.sessions, "ElastiCache"),
    ):
        if resource.url and resource.password is not None:
            # Refused, not half done: instances would get the url without its password.
            raise UserError(
                f"[resources.{table}] password: the aws provider does not carry an external url's password "
                f"yet; leave out url and password (Sprout then creates it on {managed})"
            )
    if resources.database.url:
        env_vars["DATABASE_URL"] = _literal(resources.database.url)
    if resources.sessions.url:
        env_vars["SESSION_STORE_URL"] = _literal(resources.sessions.url)
    return BootConfig(
        app=ctx.app,
        env=ctx.env,
        store_url=ctx.store_url,
        web=_literal(manifest.app.web),
        install=_literal(manifest.app.install) if manifest.app.install else None,
        health_path=manifest.health.path,
        port=APP_PORT,
        region="${AWS::Region}",
        log_group="${LogGroup}",
        grace=manifest.deploy.drain,
        env_vars=env_vars,
        sessions=data.sessions,
        database=data.database,
        app_secret=secret_name(ctx.app, ctx.env) if manifest.secrets else None,
        secret_names=sorted(manifest.secrets),
        install_inputs=(
            None
            if manifest.app.install_inputs is None
            else [_literal(p) for p in manifest.app.install_inputs]
        ),
    )


def script(ctx: RenderContext, data: DataRefs) -> str:
    """The user data script (before Fn::Sub resolves its placeholders)."""
    return SCRIPT.format(
        app=ctx.app,
        env=ctx.env,
        sprout_version=ctx.sprout_version,
        sha256=ctx.version_sha256,
        boot_json=json.dumps(boot_config(ctx, data).to_json(), indent=2, sort_keys=True),
        region="${AWS::Region}",
        stop_timeout=int(ctx.manifest.deploy.drain) + 30,
    )


def user_data(ctx: RenderContext, data: DataRefs) -> Base64:
    """The launch template's UserData property."""
    return Base64(Sub(script(ctx, data)))


def with_bundle(resolved_script: str, sha256: str) -> str:
    """The same user data pointed at another bundle (a deploy's new launch template version)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise UserError(f"aws deploy: {sha256!r} is not a bundle sha256")
    updated, count = BUNDLE_LINE.subn(f"BUNDLE_SHA256={sha256}", resolved_script)
    if count != 1:
        raise UserError(
            "aws deploy: the launch template's user data has no BUNDLE_SHA256 line; run `sprout aws up` first"
        )
    return updated

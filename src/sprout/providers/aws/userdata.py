"""User data: the shell script an EC2 instance runs at first boot to install Sprout and start the agent.

In order: send every line to the boot log and the console (and, at exit, to CloudWatch Logs); fetch
Sprout's wheel, its wheelhouse and the bundle from the artifact store and check each sha256; install
Sprout into a fresh venv with `--no-index` (nothing comes from a package index); write the boot config
and the systemd unit; start the agent; wait until the app answers its health path and tell
CloudFormation (a creation or rolling update waits for that signal). A test boots this same script under
a scratch root: `SPROUT_ROOT`, the endpoint variables and the app address move it (none is set on EC2).
"""

from __future__ import annotations

import json
import re
import shlex

from troposphere import Base64, Sub

from sprout.errors import UserError
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.context import APP_PORT, Colour, RenderContext, title
from sprout.providers.aws.data import DataRefs
from sprout.providers.aws.secrets import secret_name
from sprout.providers.aws.wheels import Runtime
from sprout.services.database import standard_url
from sprout.services.sessions import standard_memcached_env

BUNDLE_LINE = re.compile(r"^BUNDLE_SHA256=[0-9a-f]{64}$", re.MULTILINE)
#: How long a booting instance waits for its app to answer the health path before it reports failure.
BOOT_HEALTH_TIMEOUT = 600

# `<<name>>` marks a value filled in at render time; every bash `${…}` is escaped for Fn::Sub.
SCRIPT = """#!/bin/bash
# Sprout bootstrap for <<app>>/<<env>> (<<colour>>): Python, Sprout from the artifact store, then the agent.
set -euo pipefail
BUNDLE_SHA256=<<bundle_sha256>>
SPROUT_WHEEL=<<wheel_key>>
SPROUT_WHEEL_SHA256=<<wheel_sha256>>
SPROUT_WHEELHOUSE=<<wheelhouse_key>>
SPROUT_WHEELHOUSE_SHA256=<<wheelhouse_sha256>>
SPROUT_MODE=serve
SPROUT_RELEASE=
ROOT="${SPROUT_ROOT:-}"
REGION=<<region>>
IMDS="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}"
S3_URL="${SPROUT_S3_URL:-https://<<bucket>>.s3.<<region>>.<<url_suffix>>}"
LOGS_URL="${SPROUT_LOGS_URL:-https://logs.<<region>>.<<url_suffix>>}"
CFN_URL="${SPROUT_CFN_URL:-https://cloudformation.<<region>>.<<url_suffix>>}"
PYTHON="${SPROUT_PYTHON:-<<python>>}"
RUN_AS="${SPROUT_USER:-sprout}"
APP_HOST="${SPROUT_APP_HOST:-0.0.0.0}"
APP_PORT="${SPROUT_APP_PORT:-<<port>>}"
STATE="$ROOT/var/lib/sprout"
BOOT_LOG="$ROOT/var/log/sprout-boot.log"
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
mkdir -p "$(dirname "$BOOT_LOG")"
exec 3>&1
exec > >(tee -a "$BOOT_LOG") 2>&1
TEE_PID=$!
echo "sprout boot: <<app>>/<<env>> <<colour>>, bundle ${BUNDLE_SHA256:0:12}, sprout ${SPROUT_WHEEL_SHA256:0:12}"

TOKEN=$(curl -sS --fail -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 21600" "$IMDS/latest/api/token")
imds() { curl -sS --fail -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/$1"; }
INSTANCE_ID=$(imds meta-data/instance-id)
ADDRESS=$(imds meta-data/local-ipv4)
field() { grep -o "\\"$1\\" *: *\\"[^\\"]*\\"" | sed 's/.*"\\([^"]*\\)"$/\\1/'; }
# A call to an AWS API signed with the instance role's current credentials.
aws_curl() {
  local service=$1 role creds
  shift
  role=$(imds meta-data/iam/security-credentials/ | head -n 1)
  creds=$(imds "meta-data/iam/security-credentials/$role")
  curl -sS --fail --retry 3 --retry-connrefused --aws-sigv4 "aws:amz:$REGION:$service" \\
    --user "$(field AccessKeyId <<<"$creds"):$(field SecretAccessKey <<<"$creds")" \\
    -H "x-amz-security-token: $(field Token <<<"$creds")" "$@"
}
logs_call() {
  aws_curl logs -X POST "$LOGS_URL/" -H "Content-Type: application/x-amz-json-1.1" \\
    -H "X-Amz-Target: Logs_20140328.$1" --data-binary "$2" -o /dev/null
}
ship_boot_log() {
  local stream="$INSTANCE_ID/boot"
  logs_call CreateLogStream "{\\"logGroupName\\": \\"<<log_group>>\\", \\"logStreamName\\": \\"$stream\\"}" || true
  logs_call PutLogEvents "$(python3 -c 'import json, sys, time
now = int(time.time() * 1000)
lines = [l.rstrip("\\n")[:200000] or " " for l in open(sys.argv[1], errors="replace")][-5000:]
print(json.dumps({"logGroupName": sys.argv[2], "logStreamName": sys.argv[3],
                  "logEvents": [{"timestamp": now, "message": l} for l in lines]}))' \\
    "$BOOT_LOG" "<<log_group>>" "$stream")" || echo "sprout boot: the boot log did not reach CloudWatch Logs"
}
signal() {
  [ "$SPROUT_MODE" = serve ] || return 0
  aws_curl cloudformation -X POST "$CFN_URL/" -o /dev/null --data-urlencode Action=SignalResource \\
    --data-urlencode Version=2010-05-15 --data-urlencode "StackName=<<stack_id>>" \\
    --data-urlencode "LogicalResourceId=<<group>>" --data-urlencode "UniqueId=$INSTANCE_ID" \\
    --data-urlencode "Status=$1" || echo "sprout boot: CloudFormation took no $1 signal (no stack operation waits for one)"
}
on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "sprout boot: failed with status $status"
    signal FAILURE
  fi
  # Stop writing through tee and let it finish, so the boot log holds every line before it ships.
  exec >&3 2>&3
  wait "$TEE_PID" 2>/dev/null || true
  ship_boot_log
}
trap on_exit EXIT
# Fetch an artifact from the store and check its sha256; a mismatch stops the boot.
fetch() {
  aws_curl s3 -H "x-amz-content-sha256: $EMPTY_SHA256" -o "$3" "$S3_URL/<<prefix>>/$1"
  if ! echo "$2  $3" | sha256sum --check --quiet -; then
    echo "sprout boot: $1 does not hash to $2; refusing to run it"
    exit 1
  fi
  echo "sprout boot: $1 verified"
}

command -v "$PYTHON" >/dev/null || dnf install -y "$PYTHON" "$PYTHON-pip"
mkdir -p "$STATE/wheels/wheelhouse" "$STATE/store/bundles" "$ROOT/etc/sprout" "$ROOT/etc/systemd/system"
WHEEL_FILE="$STATE/wheels/${SPROUT_WHEEL##*/}"
fetch "$SPROUT_WHEEL" "$SPROUT_WHEEL_SHA256" "$WHEEL_FILE"
fetch "$SPROUT_WHEELHOUSE" "$SPROUT_WHEELHOUSE_SHA256" "$STATE/wheels/wheelhouse.tar"
fetch "bundles/$BUNDLE_SHA256.tar.gz" "$BUNDLE_SHA256" "$STATE/store/bundles/$BUNDLE_SHA256.tar.gz"
tar -xf "$STATE/wheels/wheelhouse.tar" -C "$STATE/wheels/wheelhouse"
"$PYTHON" -m venv "$ROOT/opt/sprout"
PIP_CONFIG_FILE=/dev/null "$ROOT/opt/sprout/bin/pip" install --quiet --no-index --disable-pip-version-check \\
  --find-links "$STATE/wheels/wheelhouse" "$WHEEL_FILE"
echo "sprout boot: $("$ROOT/opt/sprout/bin/sprout" --version) installed from the artifact store"
id "$RUN_AS" >/dev/null 2>&1 || useradd --system --home-dir "$STATE" "$RUN_AS"
chown -R "$RUN_AS" "$STATE"
cat > "$ROOT/etc/sprout/boot.json" <<'SPROUT_BOOT_JSON'
<<boot_json>>
SPROUT_BOOT_JSON
# A deploy's one-off release instance runs the release command once, stores its result and is terminated.
if [ "$SPROUT_MODE" = release ]; then
  "$ROOT/opt/sprout/bin/sprout" aws release --config "$ROOT/etc/sprout/boot.json" --bundle-sha256 "$BUNDLE_SHA256" \
    --state-dir "$STATE" --store "$STATE/store" --result "s3://<<bucket>>/<<prefix>>/$SPROUT_RELEASE"
  exit 0
fi
cat > "$ROOT/etc/systemd/system/sprout.service" <<SPROUT_UNIT
[Unit]
Description=Sprout agent for <<app>>/<<env>>
Wants=network-online.target
After=network-online.target

[Service]
User=$RUN_AS
Environment=AWS_DEFAULT_REGION=$REGION
ExecStart=$ROOT/opt/sprout/bin/sprout aws boot --config $ROOT/etc/sprout/boot.json --bundle-sha256 $BUNDLE_SHA256 --state-dir $STATE --store $STATE/store --host $APP_HOST --port $APP_PORT
KillMode=mixed
TimeoutStopSec=<<stop_timeout>>

[Install]
WantedBy=multi-user.target
SPROUT_UNIT
systemctl daemon-reload
systemctl enable --now sprout.service
HEALTH_PATH=<<health_path>>
for _ in $(seq <<health_tries>>); do
  if curl -sf -o /dev/null "http://$ADDRESS:$APP_PORT$HEALTH_PATH"; then
    echo "sprout boot: the app answers $HEALTH_PATH"
    signal SUCCESS
    exit 0
  fi
  sleep 2
done
echo "sprout boot: the app did not answer $HEALTH_PATH within <<health_timeout>>s; see the agent log stream $INSTANCE_ID"
exit 1
"""


def _literal(text: str) -> str:
    """`text` made safe inside Fn::Sub (a literal `${` is written `${!`)."""
    return text.replace("${", "${!")


def boot_config(ctx: RenderContext, data: DataRefs) -> BootConfig:
    """The boot config of this environment's instances; values may hold `${Resource.Attr}` placeholders."""
    manifest = ctx.manifest
    env_vars = {name: _literal(value) for name, value in manifest.env.items()}
    resources = manifest.resources
    for table, resource, replaced, managed in (
        ("database", resources.database, data.database is not None, "RDS, with a managed secret"),
        ("sessions", resources.sessions, data.sessions is not None, "ElastiCache"),
    ):
        if resource.url and resource.password is not None and not replaced:
            # Refused, not half done: instances would get the url without its password.
            raise UserError(
                f"[resources.{table}] password: the aws provider does not carry an external url's password "
                f"yet; leave out url and password (Sprout then creates it on {managed})"
            )
    # A url the stack does not replace with its own service is an external one (checked not local).
    if resources.database.url and data.database is None:
        env_vars["DATABASE_URL"] = _literal(standard_url(resources.database.url))
    if resources.sessions.url and data.sessions is None:
        shaped = standard_memcached_env(resources.sessions.url)
        env_vars |= {name: _literal(value) for name, value in shaped.items()}
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
        release=_literal(manifest.app.release) if manifest.app.release else None,
    )


def script(ctx: RenderContext, data: DataRefs, colour: Colour = "blue") -> str:
    """The user data script of `colour`'s instances (before Fn::Sub resolves its placeholders)."""
    runtime: Runtime = ctx.runtime
    values = {
        "app": ctx.app,
        "env": ctx.env,
        "colour": colour,
        "group": f"{title(colour)}Group",
        "bundle_sha256": ctx.version_sha256,
        "wheel_key": runtime.wheel_key,
        "wheel_sha256": runtime.wheel_sha256,
        "wheelhouse_key": runtime.wheelhouse_key,
        "wheelhouse_sha256": runtime.wheelhouse_sha256,
        "python": runtime.python,
        "bucket": ctx.bundle_bucket,
        "prefix": ctx.bundle_prefix,
        "region": "${AWS::Region}",
        "url_suffix": "${AWS::URLSuffix}",
        "stack_id": "${AWS::StackId}",
        "log_group": "${LogGroup}",
        "port": str(APP_PORT),
        "boot_json": json.dumps(boot_config(ctx, data).to_json(), indent=2, sort_keys=True),
        "stop_timeout": str(int(ctx.manifest.deploy.drain) + 30),
        # A path may hold `$`, `(` or `'` (RFC 3986 allows them): quoted, it is never shell code run as root.
        "health_path": _literal(shlex.quote(ctx.manifest.health.path)),
        "health_tries": str(BOOT_HEALTH_TIMEOUT // 2),
        "health_timeout": str(BOOT_HEALTH_TIMEOUT),
    }
    return re.sub(r"<<([a-z0-9_]+)>>", lambda m: values[m.group(1)], _literal(SCRIPT))


def user_data(ctx: RenderContext, data: DataRefs, colour: Colour = "blue") -> Base64:
    """The launch template's UserData property."""
    return Base64(Sub(script(ctx, data, colour)))


_RUNTIME_LINES = {
    "SPROUT_WHEEL": "wheel_key",
    "SPROUT_WHEEL_SHA256": "wheel_sha256",
    "SPROUT_WHEELHOUSE": "wheelhouse_key",
    "SPROUT_WHEELHOUSE_SHA256": "wheelhouse_sha256",
}


def for_release(resolved_script: str, result_key: str) -> str:
    """The user data of a one-off release instance: run the release command, store its result at `result_key`."""
    updated = re.sub(r"^SPROUT_MODE=\S*$", "SPROUT_MODE=release", resolved_script, count=1, flags=re.M)
    return re.sub(r"^SPROUT_RELEASE=\S*$", f"SPROUT_RELEASE={result_key}", updated, count=1, flags=re.M)


def with_bundle(resolved_script: str, sha256: str, runtime: Runtime | None = None) -> str:
    """The same user data pointed at another bundle (and Sprout runtime): a deploy's new launch template version."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise UserError(f"aws deploy: {sha256!r} is not a bundle sha256")
    updated, count = BUNDLE_LINE.subn(f"BUNDLE_SHA256={sha256}", resolved_script)
    if count != 1:
        raise UserError(
            "aws deploy: the launch template's user data has no BUNDLE_SHA256 line; run `sprout aws up` first"
        )
    if runtime is not None:
        for variable, attr in _RUNTIME_LINES.items():
            updated = re.sub(
                rf"^{variable}=\S+$", f"{variable}={getattr(runtime, attr)}", updated, count=1, flags=re.M
            )
    return updated

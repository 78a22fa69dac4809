"""The release phase on AWS: the release command runs once per deploy, on EC2, before any traffic moves.

A deploy starts one instance from the new launch template version with the same user data in release
mode: it boots as any instance (verified artifacts, Sprout offline, secrets), then `sprout aws
release` runs `[app] release` in a copy of the bundle with the instance's DATABASE_URL,
SESSION_STORE_URL, `[env]` and secrets (the app's own database user created or updated first, with the
master login read at that moment), and stores the exit code and the output's tail as
`<app>/releases/<env>/<deploy id>.json` in the bundle bucket. The deploy reads it, terminates the
instance, and moves on only on exit code 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sprout.deploy.oneoff import run_oneoff
from sprout.errors import UserError
from sprout.providers.aws.boot import instance_secrets, session_store_url
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.clients import client, reported
from sprout.providers.aws.dbuser import ensure_app_user
from sprout.providers.aws.imds import Identity

#: Lines of the release command's output kept in its result.
TAIL_LINES = 20


def result_key(env: str, version: str, started_ms: int) -> str:
    """Where (under the app's prefix) the release instance of `version` started at `started_ms` stores
    its result."""
    return f"{result_prefix(env, version)}{started_ms}.json"


def result_prefix(env: str, version: str) -> str:
    """The start of the result keys of every release instance of `version` in `env`."""
    return f"releases/{env}/{version}-"


def run_release(
    config: BootConfig, sha256: str, who: Identity, environ: Mapping[str, str], result_url: str
) -> int:
    """Run the release command of bundle `sha256` once and store its result at `result_url` (s3://…)."""
    if not config.release:
        raise UserError(f"{config.app}/{config.env}: the manifest has no [app] release command to run")
    parsed = urlparse(result_url)
    if parsed.scheme != "s3":
        raise UserError(f"aws release: --result {result_url!r} must be an s3:// URL")
    if config.database:
        # Each release brings the app's own user up to date with the master login read just now.
        ensure_app_user(config)
    env_vars = dict(config.env_vars)
    env_vars.update(instance_secrets(config))
    session = session_store_url(config)
    if session:
        env_vars["SESSION_STORE_URL"] = session
    env_vars.update(SPROUT_APP=config.app, SPROUT_ENV=config.env, SPROUT_VERSION=sha256[:12])

    def emit(stream: str, line: str) -> None:
        print(f"release {stream}: {line}", flush=True)

    result = run_oneoff(
        config.release,
        sha256=sha256,
        store_url=config.store_url,
        cache_dir=Path(config.state_dir) / "cache",
        install=config.install,
        install_inputs=config.install_inputs,
        environ=environ,
        env_vars=env_vars,
        emit=emit,
    )
    body: dict[str, Any] = {
        "instance": who.instance_id,
        "command": config.release,
        "exit_code": result.code,
        "seconds": result.seconds,
        "tail": list(result.tail[-TAIL_LINES:]),
    }
    with reported(result_url, "check the instance role may write there"):
        client("s3", config.region).put_object(
            Bucket=parsed.netloc, Key=parsed.path.lstrip("/"), Body=json.dumps(body).encode()
        )
    return result.code

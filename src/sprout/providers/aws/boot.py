"""`sprout aws boot`: what an EC2 instance runs at start — the same agent as on one machine, plus AWS wiring.

In order: learn the instance's identity from the metadata service, assemble `DATABASE_URL` from the
RDS-managed secret and `SESSION_STORE_URL` from the cache, write the `InstanceSpec`, start shipping the
log file to CloudWatch Logs, run the agent (fetch the bundle from S3, verify, unpack, install, serve)
until the app exits, ship the last lines, and exit with the agent's status.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from urllib.parse import quote

from sprout.errors import ServiceError
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.clients import client
from sprout.providers.aws.discovery import discover
from sprout.providers.aws.imds import Identity
from sprout.providers.aws.logs import LogShipper
from sprout.providers.aws.secrets import fetch_secrets
from sprout.providers.base import InstanceSpec

URL_SCHEMES = {"mysql": "mysql", "postgres": "postgres"}


def database_url(config: BootConfig) -> str | None:
    """`DATABASE_URL` built from the database's endpoint and its Secrets Manager secret, if there is one."""
    db = config.database
    if not db:
        return None
    try:
        value = client("secretsmanager", config.region).get_secret_value(SecretId=db["secret_arn"])
        secret = json.loads(value["SecretString"])
        user, password = secret["username"], secret["password"]
    except Exception as exc:
        raise ServiceError(
            f"database secret {db['secret_arn']}: cannot read it ({exc}); check the instance role"
        ) from exc
    scheme = URL_SCHEMES[db["engine"]]
    return (
        f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{db['host']}:{db['port']}/{db['name']}"
    )


def session_store_url(config: BootConfig) -> str | None:
    """`SESSION_STORE_URL` for the ElastiCache session store, if the stack has one."""
    sessions = config.sessions
    if not sessions:
        return None
    if sessions["engine"] == "memcached":
        return "memcached://" + ",".join(discover(sessions["discovery"]))
    return sessions["url"]


def instance_spec(config: BootConfig, sha256: str, who: Identity, session_url: str | None) -> InstanceSpec:
    """The agent's spec for this instance and bundle."""
    state = Path(config.state_dir)
    env_vars = dict(config.env_vars)
    if session_url:
        env_vars["SESSION_STORE_URL"] = session_url
    return InstanceSpec(
        instance_id=who.instance_id,
        app=config.app,
        env=config.env,
        version=sha256[:12],
        bundle_sha256=sha256,
        store_url=config.store_url,
        zone=who.zone,
        host=config.host,
        port=config.port,
        web=config.web,
        install=config.install,
        install_inputs=None if config.install_inputs is None else tuple(config.install_inputs),
        health_path=config.health_path,
        log_file=str(state / "logs" / f"{who.instance_id}.log"),
        cache_dir=str(state / "cache"),
        grace=config.grace,
        env_vars=env_vars,
        secret_names=(*config.secret_names, *(("DATABASE_URL",) if config.database else ())),
    )


def instance_secrets(config: BootConfig) -> dict[str, str]:
    """The app's `[secrets]` and `DATABASE_URL`, read from Secrets Manager now."""
    secrets: dict[str, str] = {}
    if config.app_secret:
        secrets.update(
            fetch_secrets(client("secretsmanager", config.region), config.app_secret, config.secret_names)
        )
    url = database_url(config)
    if url:
        secrets["DATABASE_URL"] = url
    return secrets


def boot(config: BootConfig, sha256: str, who: Identity, environ: Mapping[str, str]) -> int:
    """Bootstrap and run this instance to the end; return the agent's exit status."""
    secrets = instance_secrets(config)
    spec = instance_spec(config, sha256, who, session_store_url(config))
    spec_file = Path(config.state_dir) / "spec.json"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec.to_json(), indent=2))
    Path(spec.log_file).parent.mkdir(parents=True, exist_ok=True)
    shipper = LogShipper(
        client("logs", config.region), config.log_group, who.instance_id, Path(spec.log_file)
    )
    shipper.start()
    # The same agent as on one machine, by its command-line contract; secrets only in its environment.
    agent = subprocess.Popen(
        [sys.executable, "-m", "sprout", "agent", "--spec", str(spec_file)],
        env={**environ, **secrets},
        stdin=subprocess.DEVNULL,
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        agent.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return agent.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shipper.stop()

"""Acceptance 3: an instance boots from S3 (moto) exactly as its user data runs it, serves, and ships logs.

The test takes the user data out of the rendered template, resolves its Fn::Sub placeholders as
CloudFormation would, and runs its ExecStart command (`sprout aws boot --config … --bundle-sha256 …`).
Only the machine-specific fields of the boot config (state folder, host, port) point at the test's
temp folder and a free loopback port; the instance identity comes from a loopback metadata service
speaking IMDSv2, the AWS APIs from moto.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from sprout.bundle import S3Store
from sprout.providers.aws import render_template
from sprout.providers.aws.boot import database_url
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.logs import LogShipper, batches, event_for, read_events
from sprout.spec import load_manifest

from .conftest import REGION, client
from .fleet_setup import BUCKET, packed
from .helpers import ROOT

INSTANCE = "i-0123456789abcdef0"
ZONE = f"{REGION}a"


class Imds(BaseHTTPRequestHandler):
    """IMDSv2: a session token first, then metadata only with that token."""

    token = "imds-token"

    def do_PUT(self) -> None:
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._reply(200, self.token)
        else:
            self._reply(403, "")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            self._reply(401, "")
            return
        answers = {
            "/latest/meta-data/instance-id": INSTANCE,
            "/latest/meta-data/placement/availability-zone": ZONE,
        }
        self._reply(200, answers[self.path]) if self.path in answers else self._reply(404, "")

    def _reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Imds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def user_data_of(template: dict[str, object], values: dict[str, str]) -> str:
    """The launch template's user data with Fn::Sub placeholders resolved like CloudFormation does."""
    data = template["Resources"]["BlueLaunchTemplate"]["Properties"]["LaunchTemplateData"]  # type: ignore[index]
    text: str = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    text = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: values[m.group(1)], text)
    return text.replace("${!", "${")


@pytest.mark.slow
def test_instance_boots_from_s3_serves_and_ships_logs(aws: str, imds: str, tmp_path: Path) -> None:
    app_dir = ROOT / "examples" / "hello"
    manifest = load_manifest(app_dir / "sprout.toml")
    bundle, sha = packed(app_dir, tmp_path / "out")
    c3 = client("s3")
    c3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[attr-defined]
    S3Store(BUCKET, "hello", client=c3).put(bundle)  # type: ignore[arg-type]
    client("logs").create_log_group(logGroupName="/sprout/hello/prod")  # type: ignore[attr-defined]

    template = render_template(manifest, "prod", sha, BUCKET, "0.1.0")
    script = user_data_of(template, {"AWS::Region": REGION, "LogGroup": "/sprout/hello/prod"})
    boot_json = json.loads(script.split("<<'SPROUT_BOOT_JSON'\n", 1)[1].split("\nSPROUT_BOOT_JSON", 1)[0])
    port = free_port()
    boot_json.update(state_dir=str(tmp_path / "var-lib-sprout"), host="127.0.0.1", port=port)
    config = tmp_path / "boot.json"
    config.write_text(json.dumps(boot_json))
    bundle_sha = re.search(r"^BUNDLE_SHA256=([0-9a-f]{64})$", script, re.MULTILINE).group(1)  # type: ignore[union-attr]
    exec_start = re.search(r"^ExecStart=(.*)$", script, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert (
        exec_start
        == "/opt/sprout/bin/sprout aws boot --config /etc/sprout/boot.json --bundle-sha256 $BUNDLE_SHA256"
    )
    command = [
        sys.executable,
        "-m",
        "sprout",
        "aws",
        "boot",
        "--config",
        str(config),
        "--bundle-sha256",
        bundle_sha,
    ]

    env = {**os.environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds, "AWS_DEFAULT_REGION": REGION}
    log = open(tmp_path / "boot.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer is not None, (tmp_path / "boot.log").read_text()
        assert answer.status_code == 200
        assert INSTANCE in answer.text and ZONE in answer.text and sha[:12] in answer.text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()

    spec = json.loads((tmp_path / "var-lib-sprout" / "spec.json").read_text())
    assert (spec["instance_id"], spec["zone"], spec["store_url"]) == (INSTANCE, ZONE, f"s3://{BUCKET}/hello")

    # The lines reached CloudWatch Logs, one stream per instance; `sprout aws logs` reads them back.
    streams = client("logs").describe_log_streams(logGroupName="/sprout/hello/prod")["logStreams"]  # type: ignore[attr-defined]
    assert [s["logStreamName"] for s in streams] == [INSTANCE]
    cli = subprocess.run(
        [sys.executable, "-m", "sprout", "aws", "logs", str(app_dir), "--env", "prod", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in cli.stdout.splitlines()]
    assert records, cli.stderr
    assert {r["instance"] for r in records} == {INSTANCE}
    messages = " ".join(r["msg"] for r in records)
    assert f"bundle {sha[:12]}" in messages and "agent started" in messages
    readable = subprocess.run(
        [sys.executable, "-m", "sprout", "aws", "logs", str(app_dir), "--env", "prod"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"{INSTANCE} system: agent started" in readable


def test_shipper_sends_whole_lines_in_order_and_resumes(aws: str, tmp_path: Path) -> None:
    logs = client("logs")
    logs.create_log_group(logGroupName="/sprout/t/prod")  # type: ignore[attr-defined]
    path = tmp_path / "app.log"
    shipper = LogShipper(logs, "/sprout/t/prod", "i-1", path, interval=60)
    shipper.ensure_stream()
    shipper.ensure_stream()  # idempotent
    assert shipper.ship_once() == 0  # no file yet
    base = int(time.time()) - 100
    lines = [
        json.dumps({"ts": base + i, "stream": "stdout", "instance": "i-1", "msg": f"line {i}"})
        for i in range(5)
    ]
    path.write_text("\n".join(lines) + "\n" + f'{{"ts": {base + 9}, "msg": "half')
    assert shipper.ship_once() == 5
    with open(path, "a") as f:
        f.write(' a line"}\nplain text\n')
    assert shipper.ship_once() == 2
    events = read_events(logs, "/sprout/t/prod")
    assert [e.message for e in events[:5]] == lines
    assert events[5].message == f'{{"ts": {base + 9}, "msg": "half a line"}}'
    assert events[0].timestamp == base * 1000
    assert events[6].message == "plain text"


def test_batches_respect_put_log_events_limits() -> None:
    big = "x" * 200_000
    events = [event_for(big, 1.0) for _ in range(12)]
    sizes = [len(b) for b in batches(events)]
    assert sum(sizes) == 12 and all(s * (200_000 + 26) <= 1_048_576 for s in sizes)
    many = [event_for("y", float(i)) for i in range(25_000)]
    assert [len(b) for b in batches(many)] == [10_000, 10_000, 5_000]
    assert len(event_for("z" * 300_000, 0.0).message) == 262_144 - 26


def test_database_url_is_assembled_from_the_rds_secret(aws: str) -> None:
    arn = client("secretsmanager").create_secret(  # type: ignore[attr-defined]
        Name="rds!db-1", SecretString=json.dumps({"username": "sprout", "password": "p@ss:/word"})
    )["ARN"]
    config = BootConfig(
        app="shop",
        env="prod",
        store_url="s3://b/shop",
        web="x",
        install=None,
        health_path="/",
        port=8080,
        region=REGION,
        log_group="/sprout/shop/prod",
        database={"engine": "mysql", "host": "db.example", "port": "3306", "name": "shop", "secret_arn": arn},
    )
    assert database_url(config) == "mysql://sprout:p%40ss%3A%2Fword@db.example:3306/shop"


def test_app_secrets_round_trip_through_secrets_manager(aws: str) -> None:
    from sprout.errors import ServiceError
    from sprout.providers.aws.secrets import fetch_secrets, store_secrets

    sm = client("secretsmanager")
    store_secrets(sm, "sprout/lottery/prod", {"LOTTERY_ADMIN_TOKEN": "first"})
    store_secrets(sm, "sprout/lottery/prod", {"LOTTERY_ADMIN_TOKEN": "second"})  # a new version, same secret
    assert fetch_secrets(sm, "sprout/lottery/prod", ["LOTTERY_ADMIN_TOKEN"]) == {
        "LOTTERY_ADMIN_TOKEN": "second"
    }
    with pytest.raises(ServiceError, match="no value for OTHER"):
        fetch_secrets(sm, "sprout/lottery/prod", ["LOTTERY_ADMIN_TOKEN", "OTHER"])

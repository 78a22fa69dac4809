"""Acceptance 2: an instance boots exactly as its user data runs, from the artifact store, and serves.

The rendered template's user data (the real script, its Fn::Sub placeholders resolved as CloudFormation
does) runs under bash against moto (S3 holding the bundle, Sprout's wheel and wheelhouse; CloudWatch
Logs) and a loopback metadata service speaking IMDSv2 with role credentials. The script's own
variables move its root (/opt/sprout, /etc/sprout, /var/lib/sprout, the unit file) under a temp folder
and its endpoints to loopback; `tests/aws/bin/systemctl` plays systemd. Pip has no index: everything
Sprout needs comes out of the verified wheelhouse.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from loopback import free_port
from sprout import __version__
from sprout.bundle import S3Store
from sprout.paths import Home
from sprout.providers.aws import render_template
from sprout.providers.aws.logs import boot_tail
from sprout.providers.aws.wheels import Runtime, build_runtime
from sprout.spec import load_manifest

from .conftest import REGION, SIGNALS, client
from .fleet_setup import BUCKET, build_fleet, packed
from .helpers import ROOT
from .test_cli_moto import stack_with_outputs
from .test_deploy_moto import sizes, weights

INSTANCE = "i-0123456789abcdef0"
ZONE = f"{REGION}a"
ROLE = "sprout-hello-prod-InstanceRole"
GROUP = "/sprout/hello/prod"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/sprout-hello-prod/0a1b"


class Imds(BaseHTTPRequestHandler):
    """IMDSv2: a session token first, then metadata (and the role's credentials) only with that token."""

    token = "imds-token"
    answers = {
        "/latest/meta-data/instance-id": INSTANCE,
        "/latest/meta-data/placement/availability-zone": ZONE,
        "/latest/meta-data/local-ipv4": "127.0.0.1",
        "/latest/meta-data/iam/security-credentials/": ROLE,
        f"/latest/meta-data/iam/security-credentials/{ROLE}": json.dumps(
            {
                "Code": "Success",
                "Type": "AWS-HMAC",
                "AccessKeyId": "testing",
                "SecretAccessKey": "testing",
                "Token": "testing",
                "Expiration": "2100-01-01T00:00:00Z",
            },
            indent=2,
        ),
    }

    def do_PUT(self) -> None:
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._reply(200, self.token)
        else:
            self._reply(403, "")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            self._reply(401, "")
        elif self.path in self.answers:
            self._reply(200, self.answers[self.path])
        else:
            self._reply(404, "")

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


def resolved_user_data(template: dict[str, object], values: dict[str, str]) -> str:
    """The blue launch template's user data with Fn::Sub resolved as CloudFormation does."""
    data = template["Resources"]["BlueLaunchTemplate"]["Properties"]["LaunchTemplateData"]  # type: ignore[index]
    text: str = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    text = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: values[m.group(1)], text)
    return text.replace("${!", "${")


def stop_agent(root: Path) -> None:
    pid_file = root / "agent.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(300):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        threading.Event().wait(0.1)
    os.killpg(pid, signal.SIGKILL)


@dataclass
class Boot:
    """One instance's boot, ready to run: the resolved script and the environment that moves it."""

    script: Path
    env: dict[str, str]
    root: Path
    port: int
    sha: str
    runtime: Runtime

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.script)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=280,
            start_new_session=True,
        )


@pytest.fixture
def boot(aws: str, imds: str, tmp_path: Path) -> Iterator[Boot]:
    """The hello app's bundle, Sprout's wheel and wheelhouse in moto's S3, and its user data, resolved."""
    app_dir = ROOT / "examples" / "hello"
    manifest = load_manifest(app_dir / "sprout.toml")
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[attr-defined]
    bundle, sha = packed(app_dir, tmp_path / "out")
    S3Store(BUCKET, "hello", client=s3).put(bundle)  # type: ignore[arg-type]
    runtime, files = build_runtime(tmp_path / "runtime", cache=Home.from_env().cache)
    for key, path in files.items():
        s3.upload_file(str(path), BUCKET, f"hello/{key}")  # type: ignore[attr-defined]
    client("logs").create_log_group(logGroupName=GROUP)  # type: ignore[attr-defined]

    template = render_template(manifest, "prod", sha, BUCKET, "0.1.0", runtime)
    script = tmp_path / "user-data.sh"
    script.write_text(
        resolved_user_data(
            template,
            {
                "AWS::Region": REGION,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackId": STACK_ID,
                "LogGroup": GROUP,
            },
        )
    )
    root = tmp_path / "root"
    port = free_port()
    env = boot_env(aws, imds, root, port)
    try:
        yield Boot(script, env, root, port, sha, runtime)
    finally:
        stop_agent(root)


def boot_env(moto: str, imds: str, root: Path, port: int) -> dict[str, str]:
    """The environment that moves the user data under `root`, to loopback endpoints, with no package index."""
    # An instance has no package index and no cache shared with the machine that deployed it.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON")) and k != "SPROUT_CACHE_DIR"
    }
    env.update(
        PATH=f"{Path(__file__).parent / 'bin'}:{env['PATH']}",
        PIP_NO_INDEX="1",
        SPROUT_ROOT=str(root),
        AWS_EC2_METADATA_SERVICE_ENDPOINT=imds,
        SPROUT_S3_URL=f"{moto}/{BUCKET}",
        SPROUT_LOGS_URL=moto,
        SPROUT_CFN_URL=moto,
        SPROUT_USER=getpass.getuser(),
        SPROUT_APP_HOST="127.0.0.1",
        SPROUT_APP_PORT=str(port),
    )
    return env


def instance_user_data(instance: str) -> str:
    """An instance's user data as moto holds it, with Fn::Sub's placeholders resolved as CloudFormation does."""
    attribute = client("ec2").describe_instance_attribute(InstanceId=instance, Attribute="userData")  # type: ignore[attr-defined]
    values = {
        "AWS::Region": REGION,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": STACK_ID,
        "LogGroup": GROUP,
    }
    text = base64.b64decode(attribute["UserData"]["Value"]).decode()
    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: values[m.group(1)], text).replace("${!", "${")


def run_as_instance(instance: str, moto: str, imds: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Play EC2 for `instance`: run its user data under `tmp_path/root` against moto and the loopback IMDS."""
    script = tmp_path / f"{instance}.sh"
    script.write_text(instance_user_data(instance))
    return subprocess.run(
        ["bash", str(script)],
        env=boot_env(moto, imds, tmp_path / "root", free_port()),
        capture_output=True,
        text=True,
        timeout=280,
        start_new_session=True,
    )


def boot_log(stream: str) -> list[str]:
    """The messages of one stream of the environment's log group."""
    events = client("logs").get_log_events(logGroupName=GROUP, logStreamName=stream)["events"]  # type: ignore[attr-defined]
    return [e["message"] for e in events]


@pytest.mark.slow
def test_user_data_boots_an_instance_from_the_artifact_store_and_the_app_serves(boot: Boot) -> None:
    root, port, sha, runtime = boot.root, boot.port, boot.sha, boot.runtime
    booted = boot.run()
    out = booted.stdout + booted.stderr
    agent_out = (root / "agent.out").read_text() if (root / "agent.out").exists() else ""
    assert booted.returncode == 0, out[-4000:] + agent_out[-3000:]

    # The boot verified all three artifacts and installed Sprout offline into a fresh venv.
    for key in (runtime.wheel_key, runtime.wheelhouse_key, f"bundles/{sha}.tar.gz"):
        assert f"sprout boot: {key} verified" in out
    assert f"sprout boot: sprout {__version__} installed from the artifact store" in out
    assert (root / "opt" / "sprout" / "bin" / "sprout").exists()
    assert "sprout boot: the app answers /healthz" in out
    # CloudFormation heard that this instance of the blue group is healthy (the CreationPolicy waits).
    assert SIGNALS == [(STACK_ID, "BlueGroup", INSTANCE, "SUCCESS")]

    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert health.status_code == 200
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert INSTANCE in page.text and ZONE in page.text and sha[:12] in page.text

    # The boot log reached CloudWatch Logs on its own stream, next to the agent's.
    logs = client("logs")
    streams = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]}  # type: ignore[attr-defined]
    assert f"{INSTANCE}/boot" in streams
    boot_lines = boot_log(f"{INSTANCE}/boot")
    assert boot_lines[0].startswith("sprout boot: hello/prod blue, bundle ")
    assert f"sprout boot: {runtime.wheel_key} verified" in boot_lines


@pytest.mark.slow
def test_a_wheel_that_does_not_match_its_sha256_stops_the_boot_and_signals_failure(boot: Boot) -> None:
    # Someone replaces the stored wheel: the instance refuses to install it.
    client("s3").put_object(Bucket=BUCKET, Key=f"hello/{boot.runtime.wheel_key}", Body=b"not the wheel")  # type: ignore[attr-defined]
    booted = boot.run()
    assert booted.returncode == 1
    refusal = f"sprout boot: {boot.runtime.wheel_key} does not hash to {boot.runtime.wheel_sha256}; refusing to run it"
    assert refusal in booted.stdout
    assert not (boot.root / "opt" / "sprout").exists()
    assert SIGNALS == [(STACK_ID, "BlueGroup", INSTANCE, "FAILURE")]
    lines = boot_log(f"{INSTANCE}/boot")
    assert refusal in lines and "sprout boot: failed with status 1" in lines
    # What a failed `sprout aws up` quotes under its error line.
    assert boot_tail(client("logs"), GROUP, 2) == [
        f"{INSTANCE}/boot: {refusal}",
        f"{INSTANCE}/boot: sprout boot: failed with status 1",
    ]


@pytest.mark.slow
def test_a_failed_release_command_stops_the_deploy_before_any_new_instance_or_traffic(
    aws: str, imds: str, tmp_path: Path
) -> None:
    app = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", app)
    release = "python -c \"print('migrated', 6 * 7); raise SystemExit(3)\""
    text = (app / "sprout.toml").read_text()
    (app / "sprout.toml").write_text(
        text.replace("[health]", f"release = {json.dumps(release)}\n\n[health]", 1)
        + '\n[deploy]\nstrategy = "bluegreen"\ndrain = "0s"\nrollback_window = "10m"\n'
    )
    refs = build_fleet(load_manifest(app / "sprout.toml"), "1" * 64)
    stack_with_outputs(refs)
    ec2 = client("ec2")

    deploy = subprocess.Popen(
        [sys.executable, "-m", "sprout", "aws", "deploy", str(app), "--env", "prod"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        instance = None
        deadline = time.monotonic() + 180
        while instance is None and time.monotonic() < deadline and deploy.poll() is None:
            found = ec2.describe_instances(Filters=[{"Name": "tag:sprout:role", "Values": ["release"]}])  # type: ignore[attr-defined]
            ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
            instance = ids[0] if ids else None
            time.sleep(0.5)
        assert instance is not None, "no release instance started"
        # The instance boots in release mode: the command runs once, its result lands in S3; no agent starts.
        assert "SPROUT_RELEASE=releases/prod/v2-" in instance_user_data(instance)
        ran = run_as_instance(instance, aws, imds, tmp_path)
        assert ran.returncode == 3, (ran.stdout + ran.stderr)[-4000:]
        assert "release stdout: migrated 42" in ran.stdout
        assert not (tmp_path / "root" / "agent.pid").exists()
        assert SIGNALS == []  # a release instance is no member of a group CloudFormation waits for
        out, _ = deploy.communicate(timeout=240)
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
    assert deploy.returncode == 1, out[-4000:]
    assert (
        f"release → aborting: release command failed: `{release}` exited 3 on {instance}: migrated 42; "
        "weights unchanged"
    ) in out
    assert out.strip().endswith("deployment 1: aborted")
    assert weights(refs) == {"blue": 100, "green": 0} and sizes(refs)["green"] == (0, 4, 0)
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]  # type: ignore[attr-defined]
    assert described["State"]["Name"] in ("shutting-down", "terminated")
    releases = ec2.describe_instances(Filters=[{"Name": "tag:sprout:role", "Values": ["release"]}])  # type: ignore[attr-defined]
    assert sum(len(r["Instances"]) for r in releases["Reservations"]) == 1


@pytest.mark.slow
def test_aws_deploy_from_the_command_line_runs_the_release_command_once_before_traffic_moves(
    aws: str, imds: str, tmp_path: Path
) -> None:
    app = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", app)
    release = "python -c \"print('migrated', 6 * 7)\""
    text = (app / "sprout.toml").read_text()
    (app / "sprout.toml").write_text(
        text.replace("[health]", f"release = {json.dumps(release)}\n\n[health]", 1)
        + '\n[deploy]\nstrategy = "bluegreen"\ndrain = "0s"\nrollback_window = "10m"\n'
    )
    refs = build_fleet(load_manifest(app / "sprout.toml"), "1" * 64)
    stack_with_outputs(refs)  # its log group is the environment's
    ec2 = client("ec2")

    deploy = subprocess.Popen(
        [sys.executable, "-m", "sprout", "aws", "deploy", str(app), "--env", "prod", "--no-wait-hold"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The deploy starts one release instance; this test plays it: its user data, run as EC2 would.
        instance = None
        deadline = time.monotonic() + 180
        while instance is None and time.monotonic() < deadline and deploy.poll() is None:
            found = ec2.describe_instances(Filters=[{"Name": "tag:sprout:role", "Values": ["release"]}])  # type: ignore[attr-defined]
            ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
            instance = ids[0] if ids else None
            time.sleep(0.5)
        assert instance is not None, "no release instance started"
        assert weights(refs) == {"blue": 100, "green": 0}  # no traffic moved before the release ran
        ran = run_as_instance(instance, aws, imds, tmp_path)
        assert ran.returncode == 0, (ran.stdout + ran.stderr)[-4000:]
        assert "release stdout: migrated 42" in ran.stdout
        out, _ = deploy.communicate(timeout=240)
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
    assert deploy.returncode == 0, out[-4000:]
    assert re.search(rf"release `{re.escape(release)}` exited 0 in [0-9.]+s; {instance} terminated", out), out
    assert "weights: green 100, blue 0" in out
    assert weights(refs) == {"blue": 0, "green": 100}
    releases = ec2.describe_instances(Filters=[{"Name": "tag:sprout:role", "Values": ["release"]}])  # type: ignore[attr-defined]
    assert sum(len(r["Instances"]) for r in releases["Reservations"]) == 1

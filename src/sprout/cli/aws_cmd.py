"""`sprout aws …`: the same manifest on AWS — render, plan, up, down, deploy, rollback, logs, and the instance boot.

A sub-app, so its verbs never collide with the one-machine `plan`/`up`/`down`/`logs` commands.
Credentials and endpoints come from the standard boto3 chain; `AWS_ENDPOINT_URL` is honoured (moto).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sprout import __version__
from sprout.cli.aws_instance_cmd import add_instance_commands
from sprout.errors import ServiceError, UserError
from sprout.providers.aws.clients import reported
from sprout.spec import Manifest, load_manifest, manifest_path
from sprout.terminal import printable

if TYPE_CHECKING:
    from sprout.bundle import S3Store
    from sprout.providers.aws.deploy import Deployer
    from sprout.providers.aws.deploystate import DeployState
    from sprout.providers.aws.stack import Stack
    from sprout.providers.aws.wheels import Runtime

aws = typer.Typer(
    name="aws",
    help="Run the app on AWS: CloudFormation, EC2 Auto Scaling, ALB, S3, CloudWatch Logs.",
    no_args_is_help=True,
)

APP_DIR = typer.Argument(Path("."), help="The app folder (holds sprout.toml).")
ENV = typer.Option("prod", "--env", "-e", help="The environment name.")
BUCKET = typer.Option(None, "--bucket", help="Bundle bucket (default: sprout-<account>-<region>).")
REGION = typer.Option(None, "--region", help="AWS region (default: the manifest's [aws] region).")


@dataclass(frozen=True)
class Target:
    """An app environment on AWS: its manifest, folder, region, bucket and stack."""

    app_dir: Path
    manifest: Manifest
    env: str
    region: str
    bucket: str

    @property
    def stack(self) -> str:
        """The stack name."""
        from sprout.providers.aws.context import stack_name

        return stack_name(self.manifest.app.name, self.env)

    def client(self, service: str) -> Any:
        """A boto3 client in the target's region."""
        from sprout.providers.aws.clients import client

        return client(service, self.region)


def _target(
    app_dir: Path, env: str, bucket: str | None, region: str | None, need_bucket: bool = True
) -> Target:
    """The environment the command acts on; the default bucket name needs the account id (one STS call)."""
    manifest = load_manifest(manifest_path(app_dir))
    region = region or manifest.aws.region
    if bucket is None and need_bucket:
        from sprout.providers.aws.clients import client
        from sprout.providers.aws.stack import bucket_name

        with reported(f"aws sts in {region}", "configure AWS credentials (AWS_PROFILE or `aws configure`)"):
            account = client("sts", region).get_caller_identity()["Account"]
        bucket = bucket_name(str(account), region)
    return Target(app_dir.resolve(), manifest, env, region, bucket or "")


def _pack(target: Target, out: Path) -> tuple[Path, str]:
    from sprout.bundle import pack
    from sprout.cli.push_cmd import check_install_inputs
    from sprout.spec import manifest_path

    packed = pack(target.app_dir, out)
    check_install_inputs(manifest_path(target.app_dir), target.manifest.app.install_inputs, packed.names)
    return packed.path, packed.sha256


def _stack(target: Target) -> Stack:
    from sprout.providers.aws.stack import Stack

    return Stack(
        target.client("cloudformation"),
        target.client("s3"),
        target.stack,
        target.bucket,
        target.manifest.app.name,
    )


def _store(target: Target) -> S3Store:
    from sprout.bundle import S3Store

    return S3Store(target.bucket, target.manifest.app.name, client=target.client("s3"))


def _store_secrets(target: Target) -> None:
    """Resolve `[secrets]` here (environment or files) and store them where the instances read them."""
    if not target.manifest.secrets:
        return
    from sprout.providers.aws.secrets import secret_name, store_secrets
    from sprout.spec import resolve_secrets

    name = secret_name(target.manifest.app.name, target.env)
    store_secrets(target.client("secretsmanager"), name, resolve_secrets(target.manifest, target.app_dir))
    typer.echo(f"secrets {', '.join(sorted(target.manifest.secrets))} stored in Secrets Manager as {name}")


def _runtime(target: Target | None, out: Path) -> Runtime:
    """Build the running Sprout's wheel and wheelhouse; with a target, store them next to its bundles."""
    from sprout.providers.aws.wheels import build_runtime, upload

    runtime, files = build_runtime(out)
    if target is not None:
        upload(target.client("s3"), target.bucket, target.manifest.app.name, files)
        typer.echo(
            f"sprout {runtime.wheel_sha256[:12]} (wheelhouse {runtime.wheelhouse_sha256[:12]}) "
            f"in s3://{target.bucket}/{target.manifest.app.name}/sprout/"
        )
    return runtime


def _echo(line: str) -> None:
    typer.echo(line)


def _render(target: Target, sha256: str, runtime: Runtime) -> dict[str, object]:
    """The template; for a live stack, with its live colour and bundle so `up` never changes the code."""
    from sprout.providers.aws.context import Colour
    from sprout.providers.aws.fleetapi import AwsFleet
    from sprout.providers.aws.refs import StackRefs
    from sprout.providers.aws.template import render_template

    stack = _stack(target)
    live: Colour = "blue"
    if stack.status():
        fleet = AwsFleet(
            StackRefs.from_outputs(target.stack, stack.outputs()),
            target.client("elbv2"),
            target.client("autoscaling"),
            target.client("ec2"),
        )
        live = fleet.live()
        sha256 = fleet.bundle_of(live) or sha256
    return render_template(target.manifest, target.env, sha256, target.bucket, __version__, runtime, live)


@aws.command("render")
def render(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    bucket: str = typer.Option("sprout-bundles", "--bucket", help="Bundle bucket named in the template."),
    region: str | None = REGION,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the JSON here instead of stdout."),
) -> None:
    """Print the CloudFormation template (JSON) for the app; nothing is sent to AWS."""
    from sprout.providers.aws.template import render_template, template_json

    target = Target(app_dir.resolve(), load_manifest(manifest_path(app_dir)), env, region or "", bucket)
    with tempfile.TemporaryDirectory() as tmp:
        _, sha256 = _pack(target, Path(tmp))
        runtime = _runtime(None, Path(tmp) / "sprout")
    text = template_json(render_template(target.manifest, env, sha256, bucket, __version__, runtime))
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")
        typer.echo(f"wrote {out} (bundle {sha256[:12]})", err=True)


@aws.command("plan")
def plan(
    app_dir: Path = APP_DIR, env: str = ENV, bucket: str | None = BUCKET, region: str | None = REGION
) -> None:
    """Create a CloudFormation change set for the app and print it (nothing is changed)."""

    target = _target(app_dir, env, bucket, region)
    from sprout.providers.aws.local import check_no_local_addresses

    check_no_local_addresses(target.manifest)
    with tempfile.TemporaryDirectory() as tmp:
        _, sha256 = _pack(target, Path(tmp))
        runtime = _runtime(None, Path(tmp) / "sprout")
    stack = _stack(target)
    with reported(f"stack {target.stack}", "fix what AWS names and run `sprout aws plan` again"):
        typer.echo(stack.plan(_render(target, sha256, runtime)).describe())


@aws.command("up")
def up(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    bucket: str | None = BUCKET,
    region: str | None = REGION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
) -> None:
    """Create or update the stack: bucket, bundle upload, change set, execute, wait with progress."""
    from sprout.providers.aws.stack import ensure_bucket

    target = _target(app_dir, env, bucket, region)
    from sprout.providers.aws.local import check_no_local_addresses

    check_no_local_addresses(target.manifest)
    if ensure_bucket(target.client("s3"), target.bucket, target.region):
        typer.echo(f"created bucket {target.bucket}")
    _store_secrets(target)
    with tempfile.TemporaryDirectory() as tmp:
        path, sha256 = _pack(target, Path(tmp))
        _store(target).put(path)
        runtime = _runtime(target, Path(tmp) / "sprout")
    typer.echo(f"bundle {sha256[:12]} in s3://{target.bucket}/{target.manifest.app.name}/bundles/")
    stack = _stack(target)
    step = "see the stack events above, fix what AWS names and run `sprout aws up` again"
    with reported(f"stack {target.stack}", step):
        planned = stack.plan(_render(target, sha256, runtime))
    typer.echo(planned.describe())
    if not planned.changes:
        return
    if not yes and not typer.confirm("apply these changes?"):
        raise typer.Abort()
    with reported(f"stack {target.stack}", step):
        try:
            status = stack.apply(planned, _echo)
        except ServiceError as exc:
            from sprout.providers.aws.logs import boot_tail

            # Most often no instance got healthy: its boot log says why.
            tail = boot_tail(target.client("logs"), f"/sprout/{target.manifest.app.name}/{target.env}")
            raise ServiceError("\n".join([str(exc), *tail])) from exc
    typer.echo(f"stack {target.stack}: {status}")
    for key, value in sorted(stack.outputs().items()):
        typer.echo(f"  {key}: {value}")


@aws.command("down")
def down(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    bucket: str | None = BUCKET,
    region: str | None = REGION,
    purge: bool = typer.Option(
        False, "--purge", help="Also delete the app's bundles and deploy state in S3."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
) -> None:
    """Delete the stack; the bucket and the database's final snapshot stay (--purge: the app's objects, access logs, secret)."""
    from sprout.providers.aws.purge import purge as purge_all
    from sprout.providers.aws.secrets import secret_name

    target = _target(app_dir, env, bucket, region)
    if not yes and not typer.confirm(f"delete stack {target.stack}?"):
        raise typer.Abort()
    stack = _stack(target)
    with reported(f"stack {target.stack}", "see the events above, then run `sprout aws down` again"):
        log_bucket = stack.physical_id("AccessLogBucket") if purge else None
        typer.echo(f"stack {target.stack}: {stack.delete(_echo)}")
    if purge:
        name = secret_name(target.manifest.app.name, target.env)
        purge_all(
            target.client("s3"),
            target.client("secretsmanager"),
            target.bucket,
            target.manifest.app.name,
            log_bucket,
            name if target.manifest.secrets else None,
            _echo,
        )


@aws.command("status")
def status(
    app_dir: Path = APP_DIR, env: str = ENV, bucket: str | None = BUCKET, region: str | None = REGION
) -> None:
    """Show the stack, each colour's weight, size and bundle, healthy hosts per zone, and the last release."""
    from sprout.providers.aws.status import describe

    target = _target(app_dir, env, bucket, region)
    deployer = _deployer(target)
    stack = _stack(target)
    with reported(f"stack {target.stack}", "check the AWS credentials and region"):
        lines = describe(
            target.stack, stack.raw_status() or "", stack.outputs(), deployer.fleet, deployer.states.load()
        )
    for line in lines:
        typer.echo(line)


def _deployer(target: Target) -> Deployer:
    from sprout.providers.aws.deploy import Deployer, Timing
    from sprout.providers.aws.deploystate import S3StateStore
    from sprout.providers.aws.fleetapi import AwsFleet
    from sprout.providers.aws.refs import StackRefs

    stack = _stack(target)
    if not stack.status():
        raise UserError(f"stack {target.stack} does not exist; run `sprout aws up` first")
    refs = StackRefs.from_outputs(target.stack, stack.outputs())
    fleet = AwsFleet(refs, target.client("elbv2"), target.client("autoscaling"), target.client("ec2"))
    states = S3StateStore(target.client("s3"), target.bucket, target.manifest.app.name, target.env)
    return Deployer(
        fleet,
        states,
        _store(target),
        Timing.of(target.manifest),
        cloudwatch=target.client("cloudwatch"),
        release_command=target.manifest.app.release,
    )


def _test_gate(target: Target, bundle: Path, sha256: str) -> None:
    """The version's own tests against its bundle, on this machine, before anything is uploaded."""
    import os

    from sprout.bundle import FolderStore
    from sprout.deploy.gate import blocked, run_test_gate
    from sprout.paths import Home

    home = Home.from_env().ensure()
    local = FolderStore(home.artifacts)
    local.put(bundle)
    app, label = target.manifest.app.name, sha256[:12]
    gate = run_test_gate(
        app=app,
        version=label,
        sha256=sha256,
        store_url=local.url,
        cache_dir=home.cache,
        manifest=target.manifest,
        environ=os.environ,
        log_path=home.logs / f"test-{app}-{label}.log",
    )
    if not gate.passed:
        raise blocked(app, label, target.manifest.app.test, gate)[1]
    typer.echo(f"test gate: {gate.skipped or f'passed in {gate.seconds:.1f}s'}")


def _report(state: DeployState) -> None:
    typer.echo(state.events[-1] if state.events else "")


@aws.command("deploy")
def deploy(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    bucket: str | None = BUCKET,
    region: str | None = REGION,
    resume: bool = typer.Option(False, "--resume", help="Continue the unfinished deployment."),
    wait_hold: bool = typer.Option(
        True, "--wait-hold/--no-wait-hold", help="Wait out the rollback window and retire the old colour."
    ),
    strategy: str | None = typer.Option(
        None, "--strategy", "-s", help="bluegreen | canary (default: the manifest's)."
    ),
    skip_tests: bool = typer.Option(
        False, "--skip-tests", help="Do not run the app's tests before the upload."
    ),
) -> None:
    """Test gate, then a blue/green (or canary) deploy of the app folder to the idle colour."""
    target = _target(app_dir, env, bucket, region)
    from sprout.providers.aws.local import check_no_local_addresses
    from sprout.providers.aws.releasefleet import STRATEGIES, refusal

    check_no_local_addresses(target.manifest)
    chosen = strategy or target.manifest.deploy.strategy
    if not resume and chosen not in STRATEGIES:
        raise UserError(refusal(chosen))
    deployer = _deployer(target)
    with tempfile.TemporaryDirectory() as tmp:
        packed = None
        if not resume:
            # The gate runs before anything (runtime, secrets, bundle) is uploaded.
            packed = _pack(target, Path(tmp) / "bundle")
            if skip_tests:
                typer.echo("tests skipped (--skip-tests)")
            else:
                _test_gate(target, *packed)
        deployer.runtime = _runtime(target, Path(tmp) / "runtime")
        if packed is None:
            state = deployer.states.load()
            if state is None:
                raise UserError(f"{target.manifest.app.name}/{env}: no deployment to resume")
        else:
            _store_secrets(target)
            path, sha256 = packed
            state = deployer.start(target.manifest.app.name, env, sha256, chosen, path)
            _report(state)
    with reported(f"{target.stack} deployment", "run `sprout aws deploy --resume` once AWS is reachable"):
        state = deployer.run(state, report=_report, through_hold=wait_hold)
    typer.echo(f"deployment {state.id}: {state.status}")
    if state.status in ("failed", "rolled_back"):
        raise typer.Exit(1)


@aws.command("rollback")
def rollback(
    app_dir: Path = APP_DIR, env: str = ENV, bucket: str | None = BUCKET, region: str | None = REGION
) -> None:
    """Shift the listener back to the previous colour (bringing it back first if it was retired)."""
    target = _target(app_dir, env, bucket, region)
    deployer = _deployer(target)
    with reported(f"{target.stack} rollback", "run `sprout aws rollback` again once AWS is reachable"):
        state = deployer.rollback()
    _report(state)
    if state.active:
        with reported(f"{target.stack} rollback", "run `sprout aws deploy --resume` to finish it"):
            state = deployer.run(state, report=_report, through_hold=False)
    typer.echo(f"deployment {state.id}: {state.status}")


@aws.command("logs")
def logs(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    region: str | None = REGION,
    since: float = typer.Option(3600.0, "--since", help="Seconds back to read."),
    pattern: str | None = typer.Option(None, "--filter", help="A CloudWatch Logs filter pattern."),
    limit: int = typer.Option(1000, "--limit", help="At most this many lines (the newest)."),
    raw: bool = typer.Option(False, "--json", help="Print the records as JSON lines."),
) -> None:
    """Print the environment's log lines from CloudWatch Logs (every instance, oldest first)."""
    from sprout.providers.aws.logs import describe, read_events

    target = _target(app_dir, env, None, region, need_bucket=False)
    group = f"/sprout/{target.manifest.app.name}/{env}"
    for event in read_events(target.client("logs"), group, time.time() - since, pattern, limit):
        typer.echo(printable(event.message if raw else describe(event)))


add_instance_commands(aws)


def register(app: typer.Typer) -> None:
    """Add the `aws` command group."""
    app.add_typer(aws, name="aws")

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
from sprout.errors import ConflictError, NotFoundError, ServiceError, UserError
from sprout.providers.aws.clients import reported
from sprout.spec import Manifest, load_manifest, manifest_path
from sprout.terminal import printable

if TYPE_CHECKING:
    from sprout.bundle import S3Store
    from sprout.deploy.engine import ReleaseEngine
    from sprout.deploy.gate import GateResult
    from sprout.providers.aws.releasefleet import AwsReleaseFleet
    from sprout.providers.aws.stack import Stack
    from sprout.providers.aws.wheels import Runtime
    from sprout.state import StateStore
    from sprout.state.models import Version

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
    from sprout.paths import Home
    from sprout.providers.aws.wheels import build_runtime, upload

    runtime, files = build_runtime(out, cache=Home.from_env().ensure().cache)
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
        False,
        "--purge",
        help="Also delete the app's objects in S3, its access logs, its secret and this machine's release record.",
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
        record = _release_record(target)
        for path in (record, record.with_name(record.name + "-wal"), record.with_name(record.name + "-shm")):
            path.unlink(missing_ok=True)
        typer.echo(f"deleted the release record {record}")


@aws.command("status")
def status(
    app_dir: Path = APP_DIR, env: str = ENV, bucket: str | None = BUCKET, region: str | None = REGION
) -> None:
    """Show the stack, each colour's weight, size and bundle, healthy hosts per zone, and the last release."""
    from sprout.providers.aws.status import describe, release_lines

    target = _target(app_dir, env, bucket, region)
    releases = _releases(target)
    stack = _stack(target)
    try:
        with reported(f"stack {target.stack}", "check the AWS credentials and region"):
            lines = describe(target.stack, stack.raw_status() or "", stack.outputs(), releases.fleet.fleet)
            lines += release_lines(releases.engine, target.manifest.app.name, env)
    finally:
        releases.store.close()
    for line in lines:
        typer.echo(line)


@dataclass
class Releases:
    """The release engine of one AWS environment, over its stack's fleet and this machine's record of it."""

    engine: ReleaseEngine
    fleet: AwsReleaseFleet
    store: StateStore


def _release_record(target: Target) -> Path:
    """Where this machine records the releases of the target's stack (a state store of its own)."""
    from sprout.paths import Home

    return Home.from_env().root / "aws" / f"{target.stack}.db"


def _releases(target: Target) -> Releases:
    """The engine for the target's stack; its releases are recorded in the Sprout home, in a store of
    the stack's own (never the local daemon's, whose release loop would drive them on this machine)."""
    from sprout.bundle import FolderStore
    from sprout.cli.gate import gate_here
    from sprout.deploy.engine import ReleaseEngine
    from sprout.paths import Home
    from sprout.providers.aws.deploystate import S3StateStore
    from sprout.providers.aws.fleetapi import AwsFleet
    from sprout.providers.aws.refs import StackRefs
    from sprout.providers.aws.releasefleet import AwsReleaseFleet
    from sprout.state import StateStore

    stack = _stack(target)
    if not stack.status():
        raise UserError(f"stack {target.stack} does not exist; run `sprout aws up` first")
    refs = StackRefs.from_outputs(target.stack, stack.outputs())
    home = Home.from_env().ensure()
    local = FolderStore(home.artifacts)
    record = _release_record(target)
    record.parent.mkdir(mode=0o700, exist_ok=True)
    store = StateStore(record)
    app = target.manifest.app.name

    def version(label: str) -> Version:
        found = store.get_version(app, label)
        if found is None:
            raise UserError(f"{app} {label}: not a version released on stack {target.stack}")
        return found

    def label_of(sha256: str) -> str | None:
        found = store.version_by_sha(app, sha256)
        return found.label if found else None

    def gate(label: str) -> GateResult:
        # The version's own tests against its bundle, on this machine, before anything is uploaded.
        found = version(label)
        return gate_here(app, label, found.sha256, local.url, found.manifest)

    fleet = AwsReleaseFleet(
        AwsFleet(refs, target.client("elbv2"), target.client("autoscaling"), target.client("ec2")),
        S3StateStore(target.client("s3"), target.bucket, app),
        _store(target),
        local,
        lambda label: version(label).sha256,
        label_of,
        lambda label: version(label).manifest,
        gate,
        cloudwatch=target.client("cloudwatch"),
        report=_echo,
    )
    # Versions are recorded with their AWS-sized manifests (`_adopt`, `deploy`).
    engine = ReleaseEngine(store, fleet, lambda _app, label: version(label).manifest)
    return Releases(engine, fleet, store)


def _adopt(releases: Releases, target: Target) -> None:
    """Record the environment on its first release here: the bundle its live colour serves is its
    current version (so a rollback can go back to it)."""
    import getpass

    from sprout.providers.aws.releasefleet import aws_sized

    store, app, env = releases.store, target.manifest.app.name, target.env
    if store.get_environment(app, env) is not None:
        return
    manifest = aws_sized(target.manifest)
    store.upsert_environment(app, env, manifest, target.app_dir)
    fleet = releases.fleet.fleet
    live = fleet.live()
    sha256 = fleet.bundle_of(live)
    if not sha256:
        return
    serving = store.add_version(app, sha256, 0, manifest, releases.fleet.artifacts.url)
    store.set_current_version(app, env, serving.label)
    store.append_history(
        user=getpass.getuser(),
        app=app,
        env=env,
        action="adopt",
        manifest_hash=manifest.digest(),
        version=serving.label,
        diff_text=f"{live} serves bundle {sha256[:12]} (from `sprout aws up`) before the first release",
    )


def _hold(releases: Releases, target: Target) -> None:
    """Wait out the rollback window, then retire the warm colour (no daemon does it on AWS)."""
    app, env = target.manifest.app.name, target.env
    warm = [g for g in releases.fleet.groups(app, env).values() if g.standby_until]
    if not warm:
        return
    until = min(g.standby_until or 0.0 for g in warm)
    typer.echo(
        f"{warm[0].name} ({warm[0].version}) kept warm until "
        f"{time.strftime('%H:%M:%S', time.localtime(until))} for `sprout aws rollback`"
    )
    while time.time() < until:
        time.sleep(min(POLL, max(until - time.time(), 0.0)))
    for name in releases.engine.retire_expired(app, env):
        typer.echo(f"rollback window over: {name} retired")


#: Seconds between two looks at a waiting release step on AWS.
POLL = 5.0


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
    """Test gate, then a blue/green (or canary) release of the app folder through the release engine."""
    import getpass

    from sprout.deploy.drive import drive
    from sprout.providers.aws.context import other
    from sprout.providers.aws.local import check_no_local_addresses
    from sprout.providers.aws.releasefleet import STRATEGIES, aws_sized, refusal
    from sprout.providers.aws.status import release_word

    target = _target(app_dir, env, bucket, region)

    check_no_local_addresses(target.manifest)
    chosen = strategy or target.manifest.deploy.strategy
    if not resume and chosen not in STRATEGIES:
        raise UserError(refusal(chosen))
    app = target.manifest.app.name
    releases = _releases(target)
    engine = releases.engine
    try:
        _adopt(releases, target)
        active = engine.active(app, env)
        if resume and active is None:
            raise UserError(f"{app}/{env}: no deployment to resume")
        if not resume and active is not None:
            raise ConflictError(
                f"{app}/{env}: release {active.id} of {active.version} is at step {active.state}; "
                "resume it with `sprout aws deploy --resume` or undo it with `sprout aws rollback`"
            )
        with tempfile.TemporaryDirectory() as tmp:
            if active is None:
                path, sha256 = _pack(target, Path(tmp) / "bundle")
                releases.fleet.local.put(path)
                version = releases.store.add_version(
                    app, sha256, path.stat().st_size, aws_sized(target.manifest), releases.fleet.local.url
                )
                live = releases.fleet.fleet.live()
                typer.echo(
                    f"deploy {version.label} (bundle {sha256[:12]}): {live} is live, {other(live)} takes over"
                )
                if skip_tests:
                    typer.echo("tests skipped (--skip-tests)")
                # The gate runs in `start`, before anything (runtime, secrets, bundle) is uploaded.
                active = engine.start(
                    app,
                    env,
                    version.label,
                    chosen,
                    getpass.getuser(),
                    note="tests skipped (--skip-tests)" if skip_tests else "",
                    skip_tests=skip_tests,
                )
                _store_secrets(target)
            releases.fleet.runtime = _runtime(target, Path(tmp) / "runtime")
        with reported(f"{target.stack} deployment", "run `sprout aws deploy --resume` once AWS is reachable"):
            done = drive(engine, active, _echo, POLL)
            word = release_word(releases.engine, done)
            if wait_hold and word == "holding":
                _hold(releases, target)
                word = release_word(releases.engine, done)
    finally:
        releases.store.close()
    typer.echo(f"deployment {done.id}: {word}")
    if done.outcome != "succeeded":
        raise typer.Exit(1)


@aws.command("rollback")
def rollback(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    bucket: str | None = BUCKET,
    region: str | None = REGION,
    to: str | None = typer.Option(None, "--to", help="Roll back to this version (default: the one before)."),
) -> None:
    """Shift the listener back to the warm previous colour, else release the previous version anew."""
    import getpass

    from sprout.deploy.drive import drive
    from sprout.providers.aws.releasefleet import describe_weights
    from sprout.providers.aws.status import release_word

    target = _target(app_dir, env, bucket, region)
    app = target.manifest.app.name
    releases = _releases(target)
    try:
        if releases.store.get_environment(app, env) is None:
            raise NotFoundError(
                f"nothing to roll back: {app}/{env} has no release by `sprout aws deploy` yet"
            )
        with reported(f"{target.stack} rollback", "run `sprout aws rollback` again once AWS is reachable"):
            result = releases.engine.rollback(app, env, getpass.getuser(), to)
            if result.instant:
                typer.echo(f"rolled back: weights {describe_weights(releases.fleet.fleet.weights())}")
                typer.echo(f"live: {result.version}")
                return
            typer.echo(f"rollback to {result.version} is a new release: {result.note}")
            assert result.deployment is not None
            with tempfile.TemporaryDirectory() as tmp:
                releases.fleet.runtime = _runtime(target, Path(tmp) / "runtime")
        with reported(f"{target.stack} rollback", "run `sprout aws deploy --resume` to finish it"):
            done = drive(releases.engine, result.deployment, _echo, POLL)
        typer.echo(f"deployment {done.id}: {release_word(releases.engine, done)}")
        if done.outcome != "succeeded":
            raise typer.Exit(1)
    finally:
        releases.store.close()


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

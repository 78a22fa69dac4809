"""`sprout deploy`, `rollback`, `swap` and `scale`: releases and capacity, as a developer runs them.

`deploy` packs the folder as a new version (or takes `--version vN`) and asks the daemon to release it
with the manifest's strategy (or `--strategy`); the daemon runs the version's own tests first (the test
gate; `--skip-tests` is recorded in the history). It then follows the release to the end.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from sprout.cli.client import APPLY_TIMEOUT, ApiClient, ensure_daemon
from sprout.cli.console import cli_console
from sprout.cli.follow import follow_release
from sprout.cli.provider_cmd import PROVIDER, elsewhere
from sprout.errors import NotFoundError, UserError
from sprout.paths import Home

console = cli_console()

APP_DIR = typer.Argument(Path("."), help="The app folder (with sprout.toml).")
ENV = typer.Option("production", "--env", "-e", help="Environment name.")


def app_name(app_dir: Path) -> str:
    """The app's name from its manifest, read without validating the rest (the daemon holds the
    validated manifest; a rollback should not wait for the models to load)."""
    import tomllib

    from sprout.spec.source import existing_manifest

    path = existing_manifest(app_dir.resolve())
    try:
        name = tomllib.loads(path.read_text(encoding="utf-8-sig"))["app"]["name"]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(
            f"{path}: cannot read [app] name ({exc}); check the manifest with `sprout validate`"
        ) from exc
    if not isinstance(name, str):
        raise UserError(f"{path}: [app] name must be a string; check the manifest with `sprout validate`")
    return name


def _daemon_of(home: Home, name: str, env: str) -> ApiClient:
    """The daemon that runs `name/env`, started (it adopts what runs) when it is down, as `deploy` does:
    a rollback during an incident should not first need `sprout daemon start`. Nothing is started for an
    environment the home does not record."""
    from sprout.state.store import recorded_environments

    if f"{name}/{env}" not in recorded_environments(home.state_db):
        raise NotFoundError(f"{name}/{env}: no such environment; create it with `sprout up`")
    return ensure_daemon(home)


def register(app: typer.Typer) -> None:
    """Add deploy, rollback, swap and scale to the `sprout` command."""
    app.command("deploy")(deploy)
    app.command("rollback")(rollback)
    app.command("swap")(swap)
    app.command("scale")(scale)


def deploy(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    strategy: str | None = typer.Option(
        None, "--strategy", "-s", help="rolling | rolling_with_batch | immutable | bluegreen | canary."
    ),
    version: str | None = typer.Option(
        None, "--version", help="Deploy a pushed version (vN) instead of the folder."
    ),
    skip_tests: bool = typer.Option(
        False, "--skip-tests", help="Do not run the app's tests (recorded in the history)."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the release until it is done."),
    store: str | None = typer.Option(
        None, "--store", envvar="SPROUT_STORE", help="Artifact store URL (default: a folder in SPROUT_HOME)."
    ),
    provider: str = PROVIDER,
) -> None:
    """Release a new version with zero downtime: push, test gate, release phase, then the strategy."""
    if elsewhere(provider, "deploy"):
        from sprout.cli import aws_cmd

        if version is not None:
            raise UserError(
                f"--version {version}: with --provider aws, deploy ships the app folder (the stack numbers "
                "its own versions, apart from this machine's pushed ones); deploy that version's folder"
            )
        aws_cmd.deploy(
            app_dir=app_dir,
            env=env,
            bucket=None,
            region=None,
            resume=False,
            wait_hold=True,
            strategy=strategy,
            skip_tests=skip_tests,
        )
        return
    from sprout.cli.push_cmd import push
    from sprout.state import StateStore

    home = Home.from_env().ensure()
    app_dir = app_dir.resolve()
    state = StateStore(home.state_db)
    if version is None:
        pushed = push(app_dir, home, store)
        console.print(pushed.describe() if not pushed.unchanged else f"unchanged: {pushed.version}")
        name, label = pushed.app, pushed.version
    else:
        name, label = app_name(app_dir), version
    record = state.get_version(name, label)
    if record is None:
        raise NotFoundError(
            f"{name} {label}: no such version (see `sprout history` or push with `sprout push`)"
        )
    if state.get_environment(name, env) is None:
        raise UserError(
            f"{name}/{env}: no such environment; create it with `sprout up {app_dir} --env {env}`"
        )
    if skip_tests:
        console.print("[yellow]tests skipped (--skip-tests)[/]")
    # The gate and the release run in the daemon; like `up`, start it (it adopts what runs) if it is down.
    client = ensure_daemon(home)
    with console.status(f"{name} {label}: the daemon runs the app's tests (test gate)"):
        started = client.post(
            "/v1/deploy",
            {
                "app": name,
                "env": env,
                "version": label,
                "strategy": strategy,
                "user": getpass.getuser(),
                "skip_tests": skip_tests,
            },
            timeout=APPLY_TIMEOUT,
        )["deployment"]
    console.print(f"{name}/{env}: release {started['id']} of {label} ({started['strategy']}) started")
    if wait:
        follow_release(client, name, env, int(started["id"]))


def rollback(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    to: str | None = typer.Option(
        None, "--to", help="The version to go back to (default: the previous one)."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow a redeploy until it is done."),
    provider: str = PROVIDER,
) -> None:
    """Back to the previous version: a weight switch while the old fleet is warm, else a redeploy."""
    if elsewhere(provider, "rollback"):
        from sprout.cli import aws_cmd

        aws_cmd.rollback(app_dir=app_dir, env=env, bucket=None, region=None, to=to)
        return
    home = Home.from_env()
    name = app_name(app_dir)
    client = _daemon_of(home, name, env)
    result = client.post("/v1/rollback", {"app": name, "env": env, "to": to, "user": getpass.getuser()})
    if result["instant"]:
        console.print(f"{name}/{env}: traffic is back on {result['version']} (warm fleet, no launch)")
        return
    deployment = result["deployment"]
    why = f"{result['note']}; " if result.get("note") else ""
    console.print(
        f"{name}/{env}: {why}redeploying {result['version']} as a new release ({deployment['id']})",
        markup=False,
        soft_wrap=True,
    )
    if wait:
        follow_release(client, name, env, int(deployment["id"]))


def swap(app_dir: Path = APP_DIR, env: str = ENV) -> None:
    """Blue/green: send all traffic to the warm fleet; the live one stays warm in its place."""
    home = Home.from_env()
    name = app_name(app_dir)
    result = _daemon_of(home, name, env).post(
        "/v1/swap", {"app": name, "env": env, "user": getpass.getuser()}
    )
    console.print(f"{name}/{env}: traffic now on {result['version']}")


def scale(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    minimum: int | None = typer.Option(None, "--min", help="New lower bound of the fleet."),
    maximum: int | None = typer.Option(None, "--max", help="New upper bound of the fleet."),
    desired: int | None = typer.Option(
        None, "--desired", help="Capacity now (the autoscaler may revise it)."
    ),
) -> None:
    """Change the fleet's bounds or capacity now; recorded in the history (`sprout plan` shows the drift)."""
    if minimum is None and maximum is None and desired is None:
        raise UserError("scale: give at least one of --min, --max, --desired")
    from sprout.spec import load_manifest, parse_manifest
    from sprout.state import StateStore

    home = Home.from_env().ensure()
    state = StateStore(home.state_db)
    name = load_manifest(app_dir.resolve()).app.name
    environment = state.get_environment(name, env)
    if environment is None:
        raise NotFoundError(f"{name}/{env}: no such environment; create it with `sprout up`")
    manifest = environment.manifest
    bounds = manifest.instances.model_dump()
    bounds.update({k: v for k, v in (("min", minimum), ("max", maximum)) if v is not None})
    data = manifest.model_dump(mode="json")
    data["instances"] = {**data["instances"], "min": bounds["min"], "max": bounds["max"]}

    updated = parse_manifest(data, source=f"sprout scale {name}/{env}")
    low, high = updated.instances.min, updated.instances.max
    if desired is not None and not low <= desired <= high:
        # Said, not clamped: a capacity asked for and silently not given is a surprise at the worst time.
        hint = f"--max {desired}" if desired > high else f"--min {desired}"
        raise UserError(
            f"scale: --desired {desired} is outside min {low} .. max {high}; add {hint} to allow it"
        )
    changes = [
        f"~ instances.{key}: {manifest.instances.model_dump()[key]} → {bounds[key]}"
        for key in ("min", "max")
        if bounds[key] != manifest.instances.model_dump()[key]
    ]
    if changes:
        state.upsert_environment(name, env, updated, environment.app_dir)
    target = environment.desired_capacity if desired is None else desired
    target = min(max(target, updated.instances.min), updated.instances.max)
    if target != environment.desired_capacity:
        changes.append(f"~ desired capacity: {environment.desired_capacity} → {target}")
        state.set_desired_capacity(name, env, target, f"sprout scale by {getpass.getuser()}")
    if not changes:
        console.print(
            f"{name}/{env}: no changes (min {updated.instances.min}, max {updated.instances.max}, desired {target})"
        )
        return
    state.append_history(
        user=getpass.getuser(),
        app=name,
        env=env,
        action="scale",
        manifest_hash=updated.digest(),
        version=environment.current_version,
        diff_text="\n".join(changes),
    )
    for line in changes:
        console.print(f"{name}/{env}: {line}")

"""`sprout aws boot` and `sprout aws release`: what an EC2 instance runs (from its user data), not an operator."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def boot(
    config: Path = typer.Option(
        Path("/etc/sprout/boot.json"), "--config", help="The boot config user data wrote."
    ),
    sha256: str = typer.Option(..., "--bundle-sha256", help="The bundle this instance runs."),
    state_dir: Path | None = typer.Option(None, "--state-dir", help="Where the agent keeps its files."),
    store: str | None = typer.Option(None, "--store", help="Fetch the bundle here (user data put it there)."),
    host: str | None = typer.Option(None, "--host", help="The app's listen address."),
    port: int | None = typer.Option(None, "--port", help="The app's port (the target groups')."),
) -> None:
    """Run on an EC2 instance at start (user data): identity from IMDS, secrets, logs, then the agent."""
    from dataclasses import replace

    from sprout.providers.aws.boot import boot as run_boot
    from sprout.providers.aws.bootconfig import BootConfig
    from sprout.providers.aws.imds import identity

    loaded = BootConfig.load(config)
    loaded = replace(
        loaded,
        state_dir=str(state_dir) if state_dir else loaded.state_dir,
        store_url=store or loaded.store_url,
        host=host or loaded.host,
        port=port or loaded.port,
    )
    raise typer.Exit(run_boot(loaded, sha256, identity(), os.environ))


def release(
    config: Path = typer.Option(
        Path("/etc/sprout/boot.json"), "--config", help="The boot config user data wrote."
    ),
    sha256: str = typer.Option(..., "--bundle-sha256", help="The bundle whose release command runs."),
    state_dir: Path = typer.Option(Path("/var/lib/sprout"), "--state-dir", help="Where the cache lives."),
    store: str | None = typer.Option(None, "--store", help="Fetch the bundle here (user data put it there)."),
    result: str = typer.Option(..., "--result", help="s3:// URL for the result (exit code, output tail)."),
) -> None:
    """Run on a deploy's one-off release instance (user data): the release command, once; store its result."""
    from dataclasses import replace

    from sprout.providers.aws.bootconfig import BootConfig
    from sprout.providers.aws.imds import identity
    from sprout.providers.aws.release import run_release

    loaded = BootConfig.load(config)
    loaded = replace(loaded, state_dir=str(state_dir), store_url=store or loaded.store_url)
    raise typer.Exit(run_release(loaded, sha256, identity(), os.environ, result))


def add_instance_commands(aws: typer.Typer) -> None:
    """Add the instance-side commands to the `aws` group."""
    aws.command("boot")(boot)
    aws.command("release")(release)

"""`--provider`: the same commands for one machine (local) and for AWS, and `sprout render`.

`sprout plan|up|down|deploy|rollback|logs --provider aws` run the AWS provider's commands (CloudFormation
change sets, blue/green on ALB weights, CloudWatch Logs) with their defaults; `sprout aws <command>
--help` lists the AWS-only options (bucket, region, `--yes`, `--purge`). `sprout render --provider
aws|kubernetes` prints the template or the objects the same manifest becomes there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from sprout.errors import UserError

PROVIDER = typer.Option(
    "local", "--provider", help="local (this machine) or aws (see `sprout aws --help` for its options)."
)

Provider = Literal["local", "aws"]


def elsewhere(provider: str, command: str) -> bool:
    """True when `command` should run on AWS instead of this machine; a clear error for the unknown."""
    if provider == "local":
        return False
    if provider == "aws":
        return True
    if provider in ("kubernetes", "k8s"):
        raise UserError(
            f"{command} --provider {provider}: use `sprout k8s render|diff|apply|deploy|rollback` "
            "(they take the container image and cluster options)"
        )
    raise UserError(f"{command}: unknown --provider {provider!r} (local, aws)")


def register(app: typer.Typer) -> None:
    """Add `sprout render`."""
    app.command("render")(render)


def render(
    app_dir: Path = typer.Argument(Path("."), help="The app folder (holds sprout.toml)."),
    provider: str = typer.Option(..., "--provider", help="aws (CloudFormation JSON) or kubernetes (YAML)."),
    env: str = typer.Option("production", "--env", "-e", help="The environment name."),
    out: Path | None = typer.Option(None, "--out", "-o", help="aws: write the JSON here instead of stdout."),
) -> None:
    """Print what the manifest becomes on another provider; nothing is sent anywhere."""
    if provider == "aws":
        from sprout.cli import aws_cmd

        aws_cmd.render(app_dir=app_dir, env=env, bucket="sprout-bundles", region=None, out=out)
    elif provider in ("kubernetes", "k8s"):
        from sprout.cli import k8s_cmd

        k8s_cmd.render(
            app_dir=app_dir,
            env=env,
            version=None,
            image=None,
            namespace=None,
            bundle=None,
            store_url=None,
            secret_name=None,
            no_namespace=False,
            live="blue",
            staged=None,
            replicas=None,
            output="yaml",
        )
    else:
        raise UserError(f"render: unknown --provider {provider!r} (aws, kubernetes)")

"""`sprout init`, `validate` and `schema`: write, check and describe the manifest."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import typer
from rich.console import Console

from sprout.cli.console import cli_console
from sprout.errors import UserError
from sprout.spec import MANIFEST_NAME, Manifest, load_manifest, manifest_path, parse_manifest
from sprout.spec.units import format_duration

APP_DIR = typer.Argument(Path("."), help="The app folder (default: the current folder).", show_default=False)


def register(app: typer.Typer) -> None:
    """Add the `init`, `validate` and `schema` commands."""

    @app.command("init")
    def init(
        app_dir: Path = APP_DIR,
        name: str | None = typer.Option(None, "--name", help="App name (default: from the folder name)."),
    ) -> None:
        """Write a commented starter sprout.toml that documents every section."""
        from sprout.cli.starter import app_name_from, starter_manifest

        app_dir.mkdir(parents=True, exist_ok=True)
        path = app_dir / MANIFEST_NAME
        if path.exists():
            raise UserError(f"{path}: already exists; edit it, or remove it first to start over")
        app_name = name or app_name_from(app_dir.resolve().name)
        text = starter_manifest(app_name)
        load_manifest_text(text, path)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path} for app {app_name!r}; check it with `sprout validate`")

    @app.command("validate")
    def validate(
        app_dir: Path = APP_DIR,
        env: str = typer.Option("production", "--env", "-e", help="Environment whose host names to check."),
    ) -> None:
        """Check the manifest (and its host names against the other environments); print a summary, or
        every problem (exit code 2)."""
        from sprout.paths import Home
        from sprout.plan.conflicts import refuse_host_conflicts_at

        manifest = load_manifest(app_dir)
        refuse_host_conflicts_at(Home.from_env().state_db, manifest, env, str(manifest_path(app_dir)))
        console = cli_console()
        console.print(f"[green]✓[/] {manifest_path(app_dir).name} is valid")
        for line in summary(manifest):
            console.print(f"  {line}", markup=False)
        print_warnings(console, manifest)

    @app.command("schema")
    def schema() -> None:
        """Print the manifest's JSON Schema (point your editor at it for completion)."""
        document = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **Manifest.model_json_schema(),
            "title": "sprout.toml",
        }
        typer.echo(json.dumps(document, indent=2))


def print_warnings(console: Console, manifest: Manifest) -> None:
    """Print what the manifest allows that can fail at its peak (`sprout.services.capacity`) or that
    loses data silently (a relative SQLite path)."""
    from sprout.services.capacity import capacity_warnings
    from sprout.services.database import relative_sqlite_warning

    sqlite = relative_sqlite_warning(manifest.resources.database.url)
    for warning in [*capacity_warnings(manifest), *([sqlite] if sqlite else [])]:
        console.print(f"warning: {warning}", markup=False, soft_wrap=True)


def load_manifest_text(text: str, path: Path) -> Manifest:
    """Validate manifest text as if it were the file at `path`."""
    return parse_manifest(tomllib.loads(text), source=str(path))


def summary(manifest: Manifest) -> list[str]:
    """A few lines that say what the manifest asks for."""
    inst, health, deploy, res = manifest.instances, manifest.health, manifest.deploy, manifest.resources
    lines = [
        f"app        {manifest.app.name}: {manifest.app.web}",
        f"fleet      {inst.min}..{inst.max} {inst.size} instances across zones {', '.join(inst.zones)} "
        f"(start with {inst.initial})",
        f"health     {health.path} every {format_duration(health.interval)}, "
        f"timeout {format_duration(health.timeout)}",
        f"deploy     {deploy.strategy}, drain {format_duration(deploy.drain)}, "
        f"rollback window {format_duration(deploy.rollback_window)}",
        f"scaling    {manifest.scaling.metric} target {manifest.scaling.target:g}"
        + ("" if manifest.scaling.enabled else " (disabled)")
        + (f", {len(manifest.scaling.schedule)} scheduled" if manifest.scaling.schedule else ""),
        f"resources  sessions: {res.sessions.engine}, database: {res.database.engine}",
        f"router     {', '.join(manifest.hosts)}",
    ]
    if manifest.env or manifest.secrets:
        lines.append(f"env        {len(manifest.env)} variables, {len(manifest.secrets)} secrets")
    return lines

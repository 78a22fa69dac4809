"""`sprout plan` and `sprout history`: what `up` would change, and what every apply did."""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from sprout.cli.console import cli_console
from sprout.cli.provider_cmd import PROVIDER, elsewhere
from sprout.cli.spec_cmd import print_warnings
from sprout.paths import Home
from sprout.spec import Manifest, load_manifest
from sprout.state import HistoryEntry, StateStore, Version

APP_DIR = typer.Argument(Path("."), help="The app folder (default: the current folder).", show_default=False)


def folder_version(store: StateStore, home: Home, app_dir: Path, manifest: Manifest) -> tuple[Version, bool]:
    """The version `sprout up` would run for this folder, and whether it is already pushed."""
    from sprout.bundle import pack

    with tempfile.TemporaryDirectory(prefix=".plan-", dir=home.root) as scratch:
        packed = pack(app_dir, Path(scratch))
    known = store.version_by_sha(manifest.app.name, packed.sha256)
    if known is not None:
        return known, True
    latest = store.latest_version(manifest.app.name)
    label = f"v{latest.number + 1 if latest else 1}"
    return Version(manifest.app.name, label, packed.sha256, packed.size, "{}", None, time.time()), False


def summarize(diff_text: str) -> str:
    """The first diff line, and how many more there are."""
    lines = diff_text.splitlines() or [""]
    return lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")


def _local_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def history_json(entries: list[HistoryEntry]) -> list[dict[str, object]]:
    """History entries as JSON-ready mappings (time as ISO 8601 UTC)."""
    return [
        {**entry.__dict__, "time": datetime.fromtimestamp(entry.time, UTC).isoformat().replace("+00:00", "Z")}
        for entry in entries
    ]


def register(app: typer.Typer) -> None:
    """Add the `plan` and `history` commands."""

    @app.command("plan")
    def plan_command(
        app_dir: Path = APP_DIR,
        env: str = typer.Option("production", "--env", "-e", help="Environment name."),
        version: str | None = typer.Option(
            None, "--version", help="Plan for this pushed version (default: the folder's content, as `up`)."
        ),
        provider: str = PROVIDER,
    ) -> None:
        """Show what `sprout up` would change: settings, version, instances per zone, routes, resources."""
        from sprout.plan import DisplayExecutor, run

        if elsewhere(provider, "plan"):
            from sprout.cli import aws_cmd

            aws_cmd.plan(app_dir=app_dir, env=env, bucket=None, region=None)
            return

        home = Home.from_env().ensure()
        manifest = load_manifest(app_dir)
        console = cli_console()
        store = StateStore(home.state_db)
        try:
            target: Version | str | None = version
            if version is None:
                target, pushed = folder_version(store, home, app_dir, manifest)
                if not pushed:
                    console.print(
                        f"{target.label} = this folder's content (sha256 {target.sha256[:12]}…), "
                        "not pushed yet; `sprout up` pushes it",
                        markup=False,
                        soft_wrap=True,
                    )
            run(store, app_dir, env, target, DisplayExecutor(console))
            print_warnings(console, manifest)
        finally:
            store.close()

    @app.command("history")
    def history_command(
        app_dir: Path = APP_DIR,
        env: str | None = typer.Option(None, "--env", "-e", help="Only this environment (default: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON, full diffs included."),
    ) -> None:
        """Show the audit history of applied changes: time, user, action, version, manifest, diff."""
        home = Home.from_env().ensure()
        manifest = load_manifest(app_dir)
        store = StateStore(home.state_db)
        try:
            entries = store.list_history(manifest.app.name, env)
        finally:
            store.close()
        if as_json:
            typer.echo(json.dumps(history_json(entries), indent=2))
            return
        console = cli_console()
        if not entries:
            where = f"{manifest.app.name}/{env}" if env else manifest.app.name
            console.print(
                f"no history for {where} yet (`sprout up` records every applied change)", markup=False
            )
            return
        envs = sorted({entry.env for entry in entries})
        title = f"history of {manifest.app.name}" + (f"/{envs[0]}" if len(envs) == 1 else "")
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
        columns = ["time", "user", *(["env"] if len(envs) > 1 else []), "action", "version", "manifest"]
        for column in columns:
            table.add_column(column, no_wrap=True)
        table.add_column("changes", overflow="fold", min_width=20)
        for entry in entries:
            table.add_row(
                _local_time(entry.time),
                escape(entry.user),
                *([escape(entry.env)] if len(envs) > 1 else []),
                entry.action,
                entry.version or "-",
                (entry.manifest_hash or "-")[:8],
                escape(summarize(entry.diff_text)),
            )
        console.print(table)

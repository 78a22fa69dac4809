"""`sprout prune`: the daemon's housekeeping, on demand, whether the daemon runs or not."""

from __future__ import annotations

import typer

from sprout.cli.console import cli_console
from sprout.controlplane.housekeeping import (
    CACHE_GRACE,
    DEFAULT_RETENTION_DAYS,
    INSTANCE_DIR_GRACE,
    KEEP_VERSIONS,
    Housekeeper,
)
from sprout.logs.store import LogStore
from sprout.paths import Home
from sprout.state import StateStore


def prune() -> None:
    """Remove what the home no longer needs now: old log lines, stopped instances' folders, unused cached
    versions and bundles (the rules of the daemon's housekeeping; safe while it runs)."""
    console = cli_console()
    home = Home.from_env()
    if not home.root.exists():
        console.print(f"nothing to prune: no Sprout home at {home.root}", markup=False, soft_wrap=True)
        return
    home.ensure()
    store = StateStore(home.state_db)
    logs = LogStore(home.log_db)
    try:
        removed = Housekeeper(home, store, logs).run()
    finally:
        logs.close()
        store.close()
    if removed:
        console.print(removed.message(), markup=False, soft_wrap=True)
        return
    console.print(
        "nothing to remove: log lines are within their retention "
        f"(default {DEFAULT_RETENTION_DAYS} days), stopped instances' folders stay "
        f"{INSTANCE_DIR_GRACE / 3600:.0f} h, and each app keeps its versions in use, its {KEEP_VERSIONS} newest "
        f"and any used in the last {CACHE_GRACE / 3600:.0f} h",
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the `prune` command."""
    app.command("prune")(prune)

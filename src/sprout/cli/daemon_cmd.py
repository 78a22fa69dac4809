"""`sprout daemon start|stop|status`: the control plane's background process."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from sprout.cli.client import ApiClient
from sprout.cli.console import cli_console
from sprout.controlplane.disk import stamp
from sprout.controlplane.lifecycle import daemon_log, running_daemon, start_daemon, stop_daemon
from sprout.controlplane.router_process import RouterProcess
from sprout.errors import SproutError
from sprout.paths import Home

console = cli_console()
daemon_app = typer.Typer(help="Start, stop and inspect the control-plane daemon.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `daemon` group to the `sprout` command."""
    app.add_typer(daemon_app, name="daemon")


@daemon_app.command("start")
def start(
    api_port: int | None = typer.Option(
        None, "--api-port", help="API port on 127.0.0.1 (default: a free one)."
    ),
    port: int | None = typer.Option(
        None, "--port", "-p", help="Router port (default: the saved one, else 8080)."
    ),
) -> None:
    """Start the daemon in the background (it adopts running instances and the router)."""
    home = Home.from_env().ensure()
    before = running_daemon(home)
    info = start_daemon(home, api_port=api_port, router_port=port)
    verb = "already running" if before is not None else "started"
    console.print(f"daemon {verb}: pid {info.record.pid}, API {info.api_url}")


@daemon_app.command("stop")
def stop() -> None:
    """Stop the daemon gracefully; the router and the instances keep serving."""
    home = Home.from_env()
    if stop_daemon(home):
        console.print("daemon stopped (router and instances keep running; `sprout down` stops them)")
    else:
        console.print("daemon was not running")


@daemon_app.command("status")
def status() -> None:
    """Whether the daemon runs: pid, uptime, API URL, its loops (last good pass, stalled?); the router."""
    home = Home.from_env()
    info = running_daemon(home)
    if info is None:
        console.print(f"daemon: not running (log: {daemon_log(home)})")
    else:
        console.print(f"daemon: pid {info.record.pid}, up {info.record.uptime():.0f}s, API {info.api_url}")
        try:
            print_loops(ApiClient.for_daemon(home, info).get("/v1/status")["daemon"])
        except SproutError as exc:
            console.print(f"loops: unknown ({exc})", markup=False)
    router = RouterProcess(home).current()
    if router is None:
        console.print("router: not running")
    else:
        console.print(f"router: pid {router.record.pid}, up {router.record.uptime():.0f}s, {router.url}")
    if info is None:
        raise typer.Exit(1)


def print_disk(daemon: dict[str, Any]) -> None:
    """One line when the daemon saw the disk under SPROUT_HOME full."""
    full_since = (daemon.get("disk") or {}).get("full_since")
    if full_since:
        console.print(
            f"[bold red]disk full since {stamp(full_since)}[/]: app output and access-log rows are dropped "
            "and counted; free space under SPROUT_HOME"
        )


def print_loops(daemon: dict[str, Any]) -> None:
    """The daemon's supervised loops (last good pass, last error, stalled?) and a full disk, for people."""
    print_disk(daemon)
    loops = daemon.get("loops") or []
    if not loops:
        return
    now = time.time()
    table = Table("loop", "every", "last good pass", "state", "last error", box=None)
    for loop in loops:
        last = loop["last_pass"]
        table.add_row(
            loop["name"],
            f"{loop['period']:g}s",
            f"{now - last:.1f}s ago" if last else "not yet",
            "[bold red]STALLED[/]" if loop["stalled"] else "ok",
            escape(loop["last_error"] or ""),
        )
    console.print(table)

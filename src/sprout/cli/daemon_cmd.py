"""`sprout daemon start|stop|status`: the control plane's background process."""

from __future__ import annotations

import typer
from rich.console import Console

from sprout.controlplane.lifecycle import daemon_log, running_daemon, start_daemon, stop_daemon
from sprout.controlplane.router_process import RouterProcess
from sprout.paths import Home

console = Console(highlight=False)
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
    """Whether the daemon runs: pid, uptime, API URL; and the router."""
    home = Home.from_env()
    info = running_daemon(home)
    if info is None:
        console.print(f"daemon: not running (log: {daemon_log(home)})")
    else:
        console.print(f"daemon: pid {info.record.pid}, up {info.record.uptime():.0f}s, API {info.api_url}")
    router = RouterProcess(home).current()
    if router is None:
        console.print("router: not running")
    else:
        console.print(f"router: pid {router.record.pid}, up {router.record.uptime():.0f}s, {router.url}")
    if info is None:
        raise typer.Exit(1)

"""`sprout health` and `sprout open`: how each instance is doing right now, and the site in a browser."""

from __future__ import annotations

import json
import time
import webbrowser
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from sprout.cli.client import ApiClient, connect
from sprout.cli.console import cli_console
from sprout.cli.ops_cmd import find_env, status_document
from sprout.cli.release_cmd import app_name
from sprout.controlplane.lifecycle import running_daemon
from sprout.errors import NotFoundError, ServiceError
from sprout.paths import Home
from sprout.report import fleet_summary, health_report, number, share

console = cli_console()


def register(app: typer.Typer) -> None:
    """Add health, open, dashboard and apply (another name for up) to the `sprout` command."""
    from sprout.cli.ops_cmd import up

    app.command("health")(health)
    app.command("open")(open_site)
    app.command("dashboard")(dashboard)
    app.command("apply", help="The same as `sprout up` (push, apply the manifest, wait until healthy).")(up)


def health(
    env: str | None = typer.Option(None, "--env", "-e", help="Only this environment."),
    window: float = typer.Option(
        2.0, "--window", "-w", min=0.2, max=300.0, help="Seconds between the two readings figures come from."
    ),
    watch: bool = typer.Option(False, "--watch", help="Print a new reading every window until Ctrl-C."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Per instance, over the last seconds: router state, requests/s, status classes, p50/p99, in flight."""
    home = Home.from_env()
    daemon = running_daemon(home)
    if daemon is None:
        raise ServiceError(
            "the daemon is not running: `sprout health` reads live figures (start it with `sprout up`; "
            "`sprout status` shows the last recorded state)"
        )
    client = ApiClient.for_daemon(home, daemon)
    before = client.get("/v1/health")
    while True:
        time.sleep(window)
        after = client.get("/v1/health")
        report = health_report(before, after, env)
        if as_json:
            typer.echo(json.dumps(report, indent=2, sort_keys=True))
        else:
            if watch:
                console.clear()
            _print_report(report)
        if not watch:
            return
        before = after


def _print_report(report: dict[str, Any]) -> None:
    if report["router"] != "running":
        console.print(f"router: {report['router']}")
    if not report["environments"]:
        console.print("no environments (create one with `sprout up`)")
    for e in report["environments"]:
        t = e["total"]
        console.print(
            f"\n[bold]{e['app']}/{e['env']}[/]  {e['url'] or ''}  version {e['version'] or '-'}  "
            f"{fleet_summary(e)}  {t['rps']:.1f} req/s over {report['window']:.1f}s",
            soft_wrap=True,
        )
        # Fits 80 columns: a terminal's default width, and what Rich assumes when output is piped.
        table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False)
        table.add_column("id", no_wrap=True, min_width=12)
        for name in ("zone", "ver", "state", "req/s", "2xx", "3xx", "4xx", "5xx", "p50 ms", "p99 ms", "busy"):
            table.add_column(name, no_wrap=True)
        for row in [*e["instances"], {"id": "total", **t}]:
            shares = row.get("percent") or {}
            if row["id"] == "total":
                state = ""
            elif row.get("state") != "running":
                state = str(row.get("state"))
            else:
                state = row.get("router_state") or "unrouted"
            table.add_row(
                row["id"],
                row.get("zone", ""),
                row.get("version", ""),
                state,
                number(row.get("rps"), 1),
                *(share(shares.get(c)) for c in ("2xx", "3xx", "4xx", "5xx")),
                number(row.get("p50_ms"), 1),
                number(row.get("p99_ms"), 1),
                number(row.get("in_flight"), 0),
            )
        console.print(table)


def open_site(
    app_dir: Path = typer.Argument(Path("."), help="The app folder (its manifest names the app)."),
    env: str = typer.Option("production", "--env", "-e", help="Environment name."),
    print_only: bool = typer.Option(False, "--print", help="Only print the URL."),
) -> None:
    """Open the environment's URL in a web browser (and print it)."""
    name = app_name(app_dir)
    found = find_env(status_document(Home.from_env()), name, env)
    if found is None:
        raise NotFoundError(f"{name}/{env}: no such environment (create it with `sprout up`)")
    if not found["url"]:
        raise ServiceError(f"{name}/{env}: no URL yet (the router's port is unknown; run `sprout up`)")
    url = str(found["url"])
    typer.echo(url)
    if not print_only and not webbrowser.open(url):
        typer.echo("no web browser found here: open the URL above yourself")


def dashboard(
    print_only: bool = typer.Option(False, "--print", help="Only print the sign-in link."),
) -> None:
    """Open the web dashboard with a one-time sign-in link (valid for a minute, once)."""
    client = connect(Home.from_env())
    answer = client.post("/v1/dashboard/codes", {})
    url = f"{client.base_url.rstrip('/')}{answer['path']}?code={answer['code']}"
    typer.echo(url)
    if not print_only and not webbrowser.open(url):
        typer.echo("no web browser found here: open the link above yourself (it works once, for a minute)")

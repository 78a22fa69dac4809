"""`sprout logs`: the central log store and the router's access files, through the daemon or directly.

Kept apart from the other operations so that a query, often typed in a loop, loads only what it uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from sprout.accessfiles import SEARCH_BUDGET, SEARCH_BUDGET_MAX, AccessFiles
from sprout.accessfiles import folder_of as access_folder_of
from sprout.cli.client import ApiClient
from sprout.cli.console import cli_console
from sprout.cli.provider_cmd import PROVIDER, elsewhere
from sprout.controlplane.lifecycle import running_daemon
from sprout.controlplane.logquery import query_logs
from sprout.errors import NotFoundError, SproutError
from sprout.logs.store import LogStore
from sprout.paths import Home
from sprout.terminal import printable

console = cli_console()


def register(app: typer.Typer) -> None:
    """Add logs to the `sprout` command."""
    app.command("logs")(logs)


def logs(
    app_dir: Path = typer.Argument(
        Path("."), help="The app folder (its app's logs); any folder for all apps."
    ),
    env: str | None = typer.Option(None, "--env", "-e", help="Only this environment."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    instance: str | None = typer.Option(None, "--instance", help="Only this instance id."),
    version: str | None = typer.Option(None, "--version", help="Only this version (vN)."),
    since: str | None = typer.Option(None, "--since", help="Only lines newer than this (10m, 2h)."),
    grep: str | None = typer.Option(None, "--grep", help="Only lines containing this text."),
    router: bool = typer.Option(False, "--router", help="The router's access log instead of the app's."),
    limit: int = typer.Option(200, "--limit", "-n", help="How many lines to show first."),
    search_seconds: float = typer.Option(
        SEARCH_BUDGET,
        "--search-seconds",
        min=0,
        max=SEARCH_BUDGET_MAX,
        help=f"How long to search the router's access files, newest first (at most {SEARCH_BUDGET_MAX:g}).",
    ),
    provider: str = PROVIDER,
) -> None:
    """Query the central log store: every instance's output and the router's access log."""
    if elsewhere(provider, "logs"):
        from sprout.cli import aws_cmd
        from sprout.spec.units import parse_duration

        seconds = parse_duration(since) if since else 3600.0
        aws_cmd.logs(
            app_dir=app_dir,
            env=env or "production",
            region=None,
            since=seconds,
            pattern=f'"{grep}"' if grep else None,
            limit=limit,
            raw=False,
        )
        return
    home = Home.from_env()
    fetch = _log_source(home)
    app_name = _app_name(app_dir)
    query: dict[str, Any] = {
        "app": None if router else app_name,
        "env": None if router else env,
        "instance": instance,
        "version": version,
        "since": since,
        "grep": grep,
        "source": "router" if router else "instance",
        "limit": limit,
        "search_seconds": search_seconds,
    }
    # A request path or id names a request: its router line is shown beside the app's own lines.
    queries = [query]
    if grep and not router:
        queries.append({**query, "app": None, "env": None, "instance": None, "source": "router"})
    pages = [fetch(q) for q in queries]
    shown = sorted([line for page in pages for line in page["lines"]], key=lambda r: r["ts"])[-limit:]
    for line in shown:
        _print_line(line)
    unread = pages[-1].get("access_unread")
    if unread:
        _print_unread(unread, search_seconds)
    if not follow:
        return
    # Each query is followed from its own page's newest id: queries run one after another, so one shared
    # cursor would skip a line the first query missed and the second one's newer line jumped over.
    cursors = [page["last_id"] for page in pages]
    try:
        while True:
            lines, cursors = _newer(fetch, queries, cursors)
            for line in lines:
                _print_line(line)
            if not lines:
                time.sleep(0.5)
    except KeyboardInterrupt:
        return


#: Lines one follow query takes at a time.
_FOLLOW_PAGE = 1000


def _newer(
    fetch: Callable[[dict[str, Any]], dict[str, Any]], queries: list[dict[str, Any]], cursors: list[int]
) -> tuple[list[dict[str, Any]], list[int]]:
    """The stored lines after each query's cursor matching it, in id order, and the cursors to follow on
    from; a query that filled its page bounds the rest, so lines are printed in the order they were stored."""
    pages = [
        fetch({**q, "since": None, "after": cursor, "limit": _FOLLOW_PAGE})["lines"]
        for q, cursor in zip(queries, cursors, strict=True)
    ]
    full = [page[-1]["id"] for page in pages if len(page) == _FOLLOW_PAGE]
    bound = min(full) if full else None
    kept = [[line for line in page if bound is None or line["id"] <= bound] for page in pages]
    cursors = [page[-1]["id"] if page else cursor for page, cursor in zip(kept, cursors, strict=True)]
    return sorted((line for page in kept for line in page), key=lambda r: r["id"]), cursors


def _log_source(home: Home) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Where `logs` reads: the daemon's API, or the log store itself when no daemon runs (after `down`)."""
    daemon = running_daemon(home)
    if daemon is not None:
        client = ApiClient.for_daemon(home, daemon)
        return lambda query: client.get("/v1/logs", **query)
    if not home.log_db.exists():
        raise NotFoundError(f"{home.log_db}: no logs yet (run `sprout up` first)")
    store = LogStore(home.log_db)
    access = AccessFiles(access_folder_of(home.router_access_log))
    return lambda query: query_logs(store, {k: str(v) for k, v in query.items() if v is not None}, access)


def _app_name(app_dir: Path) -> str | None:
    from sprout.spec import load_manifest

    try:
        return load_manifest(app_dir.resolve()).app.name
    except SproutError:
        return None


def _print_unread(unread: dict[str, Any], seconds: float) -> None:
    """Say which access files a search left unread, and how to reach them."""
    until = datetime.fromtimestamp(unread["until"]).strftime("%Y-%m-%d %H:%M:%S")
    cli_console(stderr=True).print(
        f"note: the router's access files were searched for {seconds:g} s, newest first; {unread['files']} "
        f"older file(s) ({unread['bytes'] / 2**20:.1f} MiB, requests up to {until}) were not read: narrow "
        f"with --since, search longer with --search-seconds (up to {SEARCH_BUDGET_MAX:g}), or zgrep "
        f"{unread['folder']}/access-*",
        markup=False,
    )


def _print_line(line: dict[str, Any]) -> None:
    stamp = datetime.fromtimestamp(line["ts"]).strftime("%H:%M:%S.%f")[:-3]
    who = line["instance"] or line["source"]
    text = f"{stamp} {who} {line['version'] or '-'} {line['stream']}: {line['msg']}"
    console.print(printable(text), markup=False, highlight=False)

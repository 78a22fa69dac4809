"""`sprout router`: run the data plane (reverse proxy, health checks, admin API)."""

from __future__ import annotations

from pathlib import Path

import typer

from sprout.paths import Home
from sprout.router.config import RouterConfig

_D = RouterConfig()


def router_command(
    listen: str = typer.Option(
        "127.0.0.1:8080", "--listen", help="host:port for proxied traffic (port 0: any)."
    ),
    admin: str = typer.Option(
        "127.0.0.1:8081", "--admin", help="host:port of the admin API (keep it on loopback)."
    ),
    admin_socket: Path | None = typer.Option(
        None, "--admin-socket", help="Also serve the admin API on this unix socket."
    ),
    token_file: Path | None = typer.Option(
        None, "--token-file", help="Admin bearer token file; created with a random token if missing."
    ),
    state: Path | None = typer.Option(
        None, "--state", help="Routing table file, restored at start, saved on change."
    ),
    access_log: Path | None = typer.Option(
        None, "--access-log", help="Append JSON-lines access log here (off if unset)."
    ),
    max_header_bytes: int = typer.Option(
        _D.max_header_bytes, help="Largest request header block (else 431)."
    ),
    max_request_line: int = typer.Option(_D.max_request_line, help="Longest request target (else 414)."),
    header_timeout: float = typer.Option(
        _D.header_timeout, help="Seconds to receive a request head (else 408)."
    ),
    idle_timeout: float = typer.Option(
        _D.idle_timeout, help="Seconds an idle keep-alive client connection stays."
    ),
    max_connections: int = typer.Option(_D.max_connections, help="Client connections accepted at once."),
    connect_timeout: float = typer.Option(_D.connect_timeout, help="Seconds to connect to a target."),
    response_timeout: float = typer.Option(
        _D.response_timeout, help="Seconds to wait for a response head (else 504)."
    ),
    upstream_idle_timeout: float = typer.Option(
        _D.upstream_idle_timeout, help="Seconds a pooled upstream connection idles."
    ),
    max_retries: int = typer.Option(
        _D.max_retries, help="Extra attempts when a request could not be delivered."
    ),
    cache_bytes: int = typer.Option(_D.cache_bytes, help="Edge cache budget per route, in bytes."),
    shutdown_timeout: float = typer.Option(
        _D.shutdown_timeout, help="Seconds in-flight requests get on SIGTERM."
    ),
    trusted_proxy: list[str] = typer.Option(
        [],
        "--trusted-proxy",
        help="Address or CIDR of a proxy in front whose forwarding headers are kept (repeatable; default none).",
    ),
    admin_max_connections: int = typer.Option(
        _D.admin_max_connections, help="Admin connections served at once (more get 503)."
    ),
    admin_max_body: int = typer.Option(_D.admin_max_body, help="Largest admin request body (else 413)."),
) -> None:
    """Run the router until SIGTERM; prints 'router listening on … admin on …' when ready."""
    from sprout.errors import SproutError
    from sprout.router.server import Options, run

    home = Home.from_env()
    config = RouterConfig(
        max_header_bytes=max_header_bytes,
        max_request_line=max_request_line,
        header_timeout=header_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        connect_timeout=connect_timeout,
        response_timeout=response_timeout,
        upstream_idle_timeout=upstream_idle_timeout,
        max_retries=max_retries,
        cache_bytes=cache_bytes,
        shutdown_timeout=shutdown_timeout,
        trusted_proxies=tuple(trusted_proxy),
        admin_max_connections=admin_max_connections,
        admin_max_body=admin_max_body,
    )
    options = Options(
        listen=listen,
        admin=admin,
        admin_socket=admin_socket,
        token_file=token_file or home.run / "router.token",
        state=state or home.run / "router-table.json",
        access_log=access_log,
        config=config,
    )
    try:
        run(options)
    except SproutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from exc


def register(app: typer.Typer) -> None:
    """Add the `router` command to the `sprout` CLI."""
    app.command("router")(router_command)

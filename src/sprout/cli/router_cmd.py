"""`sprout router`: run the data plane (reverse proxy, health checks, admin API) under its supervisor."""

from __future__ import annotations

import typer


def router_command(ctx: typer.Context) -> None:
    """Run the router until SIGTERM; `sprout router --help` lists its options (the router's own parser)."""
    from sprout.router.supervisor import main

    raise typer.Exit(main(list(ctx.args)))


def register(app: typer.Typer) -> None:
    """Add the `router` command to the `sprout` CLI."""
    app.command(
        "router",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(router_command)

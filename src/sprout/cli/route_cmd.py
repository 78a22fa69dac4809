"""`sprout route default`: which environment the router serves for requests naming no known host."""

from __future__ import annotations

import getpass

import typer

from sprout.cli.client import ensure_daemon
from sprout.cli.console import cli_console
from sprout.cli.ops_cmd import status_document
from sprout.errors import NotFoundError, UserError
from sprout.paths import Home

console = cli_console()


def default(
    target: str | None = typer.Argument(
        None, metavar="[APP/ENV]", help="The environment to serve; without it, show the current one."
    ),
) -> None:
    """Move the router's default route (e.g. http://127.0.0.1:PORT/) to APP/ENV, or show where it is."""
    home = Home.from_env()
    if target is not None:
        app, slash, env = target.partition("/")
        if not slash or not app or not env or "/" in env:
            raise UserError(f"route default: {target!r} is not APP/ENV (e.g. shop/production)")
        # Checked before the daemon is started: a refused command must leave nothing running.
        _require_environment(home, app, env)
        # The daemon records the choice and pushes the table to the router at once.
        ensure_daemon(home.ensure()).post(
            "/v1/default-route", {"app": app, "env": env, "user": getpass.getuser()}
        )
    if not home.root.exists():
        console.print("default route: none (no Sprout home yet; `sprout up` creates one)", markup=False)
        return
    doc = status_document(home)
    port = doc["router"]["port"]
    found = next((e for e in doc["environments"] if e.get("default")), None)
    if found is None:
        console.print("default route: none (`sprout route default APP/ENV` sets it)", markup=False)
        return
    console.print(
        f"default route: http://127.0.0.1:{port}/ serves {found['app']}/{found['env']}", markup=False
    )


def _require_environment(home: Home, app: str, env: str) -> None:
    """Fail with the environments there are unless the home's state store records `app/env`."""
    from sprout.state.store import recorded_environments

    known = recorded_environments(home.state_db)
    if f"{app}/{env}" in known:
        return
    raise NotFoundError(
        f"route default: {app}/{env}: no such environment "
        + (f"(environments: {', '.join(known)})" if known else "(none yet; create one with `sprout up`)")
    )


def register(app: typer.Typer) -> None:
    """Add the `route` command group to the `sprout` CLI."""
    route = typer.Typer(
        help="The router's routes: where requests for no known host go.", no_args_is_help=True
    )
    route.command("default")(default)
    app.add_typer(route, name="route")

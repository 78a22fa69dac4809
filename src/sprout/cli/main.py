"""The `sprout` command: one Typer app; each topic registers its commands from its own module."""

from __future__ import annotations

import importlib
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from sprout import __version__
from sprout.errors import SproutError

#: Modules that each define `register(app: typer.Typer) -> None`, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "sprout.cli.spec_cmd",
    "sprout.cli.push_cmd",
    "sprout.cli.plan_cmd",
    "sprout.cli.agent_cmd",
    "sprout.cli.ops_cmd",
    "sprout.cli.release_cmd",
    "sprout.cli.daemon_cmd",
    "sprout.cli.aws_cmd",
    "sprout.cli.k8s_cmd",
    "sprout.cli.provider_cmd",
    "sprout.cli.router_cmd",
    "sprout.cli.simulate_cmd",
    "sprout.cli.cost_cmd",
)

app = typer.Typer(
    name="sprout",
    help="Deploy and run web apps: one manifest, self-bootstrapping instances, zero-downtime releases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sprout {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Sprout: deploy and run web apps with the practices of a well-run cloud platform."""
    if debug:
        os.environ["SPROUT_DEBUG"] = "1"


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def run() -> None:
    """Entry point: run the CLI, turning SproutError into one clear line and its exit code."""
    try:
        # Without standalone mode click returns a `typer.Exit(n)` raised by a command as n.
        code = app(standalone_mode=False)
    except SproutError as exc:
        if os.environ.get("SPROUT_DEBUG"):
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Usage errors of the click that typer carries (vendored or not): they print themselves.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)

"""The `sprout` command: one Typer app; each topic registers its commands from its own module."""

from __future__ import annotations

import importlib
import itertools
import os
import sys
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperOption

from sprout import __version__
from sprout.cli.console import cli_console
from sprout.errors import ServiceError, SproutError, UserError
from sprout.terminal import printable

#: Each module defines `register(app: typer.Typer) -> None`, which adds these commands (help order).
#: Only the module of the command being run is imported: a CLI that starts fast makes a rollback fast.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "sprout.cli.spec_cmd": ("init", "validate", "schema"),
    "sprout.cli.push_cmd": ("push",),
    "sprout.cli.plan_cmd": ("plan", "history"),
    "sprout.cli.agent_cmd": ("agent",),
    "sprout.cli.ops_cmd": ("up", "status", "down"),
    "sprout.cli.logs_cmd": ("logs",),
    "sprout.cli.health_cmd": ("health", "open", "dashboard", "apply"),
    "sprout.cli.release_cmd": ("deploy", "rollback", "swap", "scale"),
    "sprout.cli.daemon_cmd": ("daemon",),
    "sprout.cli.prune_cmd": ("prune",),
    "sprout.cli.aws_cmd": ("aws",),
    "sprout.cli.k8s_cmd": ("k8s",),
    "sprout.cli.provider_cmd": ("render",),
    "sprout.cli.router_cmd": ("router",),
    "sprout.cli.route_cmd": ("route",),
    "sprout.cli.simulate_cmd": ("simulate",),
    "sprout.cli.cost_cmd": ("cost",),
}


_typed_label = TyperOption.display_type_rich


def _flag_label(option: TyperOption, ctx: Any) -> str | None:
    """The type column of `--help`: nothing for a flag (`--debug`, not `--debug <bool>`)."""
    return None if option.is_flag else _typed_label(option, ctx)


# Typer labels every option with its type, flags included, which reads as if `--debug true` were asked
# for; a flag takes no value, so its help shows none.
TyperOption.display_type_rich = _flag_label  # type: ignore[method-assign,assignment]

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


_loaded: set[str] = set()


def load_commands(command: str | None = None) -> typer.Typer:
    """The app with the module of `command` registered (every module when None or unknown, as for --help)."""
    wanted = [module for module, names in COMMAND_MODULES.items() if command in names] or list(
        COMMAND_MODULES
    )
    for module in wanted:
        if module not in _loaded:
            importlib.import_module(module).register(app)
            _loaded.add(module)
    return app


#: Words people write after a flag as if it took a value (`--debug true`).
_FLAG_VALUES = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _check_flag_values(args: list[str]) -> None:
    """Refuse `--debug true` (click would read `true` as a command) with the line to write instead."""
    for flag, word in itertools.pairwise(args):
        if flag == "--debug" and word.lower() in _FLAG_VALUES:
            raise UserError(
                f"command line: `--debug` is a flag and takes no value (got `{word}`); "
                "write `sprout --debug COMMAND …`"
            )


def _command_name(args: list[str]) -> str | None:
    """The command a command line asks for: its first word that is not an option."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def run() -> None:
    """Entry point: run the CLI, turning SproutError into one clear line and its exit code."""
    try:
        _check_flag_values(sys.argv[1:])
        # Without standalone mode click returns a `typer.Exit(n)` raised by a command as n.
        code = load_commands(_command_name(sys.argv[1:]))(standalone_mode=False)
    except SproutError as exc:
        if os.environ.get("SPROUT_DEBUG"):
            raise
        # Errors carry app text (test output, release reasons): no escape sequence reaches the terminal.
        message = escape(printable(str(exc)))
        cli_console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        cli_console(stderr=True).print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Usage errors of the click that typer carries (vendored or not): they print themselves.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        from sprout.diskfull import is_disk_full

        if is_disk_full(exc) and not os.environ.get("SPROUT_DEBUG"):
            from sprout.paths import Home

            where = getattr(exc, "filename", None) or Home.from_env().root
            cli_console(stderr=True).print(
                f"[bold red]error:[/] disk full under {escape(str(where))} ({escape(str(exc))}); free space "
                "there and run the command again",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(ServiceError.exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)

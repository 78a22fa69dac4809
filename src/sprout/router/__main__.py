"""`python -m sprout.router`: the router command without the rest of the CLI."""

from __future__ import annotations

import typer

from sprout.cli.router_cmd import router_command


def main() -> None:
    """Run `router_command` as a standalone Typer app."""
    typer.run(router_command)


if __name__ == "__main__":
    main()

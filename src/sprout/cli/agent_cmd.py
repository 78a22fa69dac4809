"""`sprout agent`: run one instance (bootstrap its bundle, supervise its app); started by providers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `agent` command."""

    @app.command("agent")
    def agent(
        spec: Path = typer.Option(..., "--spec", help="The instance spec JSON file written by the provider."),
    ) -> None:
        """Bootstrap an instance from its spec and run its app until it exits (providers start this)."""
        # Imported here so other commands never pay for the agent's modules.
        from sprout.agent.main import load_spec, run_agent

        # sys.exit, not typer.Exit: in non-standalone mode click returns Exit's code instead of exiting.
        sys.exit(run_agent(load_spec(str(spec)), os.environ))

"""`sprout simulate`: replay a load trace through scaling policies and print cost and SLO violations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sprout.errors import UserError
from sprout.scale.config import Limits
from sprout.scale.simulate import (
    Scenario,
    default_config,
    expand_policies,
    load_manifest,
    scenario_from_manifest,
    simulate_all,
)
from sprout.scale.trace import load_trace


def simulate_command(
    trace: Annotated[Path, typer.Option("--trace", help="CSV trace: t_seconds,requests_per_second.")],
    capacity: Annotated[float, typer.Option("--capacity", help="Req/s one instance serves within the SLO.")],
    launch_delay: Annotated[
        int, typer.Option("--launch-delay", help="Seconds from launching an instance until it serves.")
    ],
    policy: Annotated[
        str, typer.Option("--policy", help="sprout | hpa | asg | fixed-peak | all.")
    ] = "sprout",
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="sprout.toml whose [scaling], [instances], [cost] apply."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of load, capacity, instances.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Replay a trace through a scaling policy: instance-seconds, SLO-violation seconds, peak fleet, cost."""
    if capacity <= 0:
        raise UserError(f"simulate: --capacity must be above 0 req/s, got {capacity:g}")
    if launch_delay < 0:
        raise UserError(f"simulate: --launch-delay cannot be negative, got {launch_delay}")
    names = expand_policies(policy)
    loaded = load_trace(trace)
    if manifest is not None:
        scenario = scenario_from_manifest(load_manifest(manifest), capacity, launch_delay)
    else:
        scenario = Scenario(capacity, launch_delay, default_config(capacity, launch_delay), Limits(1, 10_000))
    results = simulate_all(loaded, names, scenario, keep_series=plot is not None)
    if plot is not None:
        from sprout.scale.plot import plot_results

        title = f"{loaded.name}: capacity {capacity:g} req/s per instance, launch delay {launch_delay}s"
        plot_results(title, results, plot)
    if json_output:
        documents = [r.to_json() for r in results]
        typer.echo(json.dumps(documents[0] if len(documents) == 1 else documents))
        return
    currency = scenario.prices.currency
    typer.echo(
        f"{loaded.name}: {loaded.duration} s, capacity {capacity:g} req/s per instance, launch delay {launch_delay} s"
    )
    typer.echo(f"{'policy':<12}{'instance-s':>12}{'violation-s':>13}{'max':>6}{'cost':>12}")
    for r in results:
        typer.echo(
            f"{r.policy:<12}{r.instance_seconds:>12}{r.violation_seconds:>13}{r.max_instances:>6}"
            f"{r.cost:>8.2f} {currency}"
        )


def register(app: typer.Typer) -> None:
    """Add `sprout simulate` to the CLI."""
    app.command("simulate")(simulate_command)

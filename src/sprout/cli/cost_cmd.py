"""`sprout cost`: spend so far, projected month, savings against fixed peak capacity, and `--advise`.

The command reads its data through `CostSources` so that it does not depend on where lifetimes and
metrics are kept; `register` wires it to the state store (`sprout.cost.observed`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import typer

from sprout.cost.advise import EnvScaling, HourlyLoad, advise
from sprout.cost.capacity import DesiredCapacity
from sprout.cost.lifetimes import InstanceLifetime
from sprout.cost.report import Pricing, build_report, render_text
from sprout.errors import UserError

_AGO = re.compile(r"^(\d+)\s*([mhd])$")
_AGO_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def _no_history() -> Sequence[HourlyLoad]:
    return ()


def _no_settings() -> Sequence[EnvScaling]:
    return ()


def _no_decisions() -> Mapping[tuple[str, str], DesiredCapacity]:
    return {}


@dataclass(frozen=True, slots=True)
class CostSources:
    """Where `sprout cost` gets its data: lifetimes, each app's prices, desired capacity over time, hourly
    load and scaling settings, the clock."""

    lifetimes: Callable[[], Sequence[InstanceLifetime]]
    prices: Pricing = field(default_factory=Pricing)
    desired: Callable[[], Mapping[tuple[str, str], DesiredCapacity]] = _no_decisions
    hourly: Callable[[], Sequence[HourlyLoad]] = _no_history
    settings: Callable[[], Sequence[EnvScaling]] = _no_settings
    now: Callable[[], float] = time.time


def parse_since(value: str | None, now: float, lifetimes: Sequence[InstanceLifetime]) -> float:
    """`--since`: an ISO date or time (UTC unless it says otherwise), `7d`/`12h`/`30m` ago, or the first launch."""
    if value is None:
        return min((life.start for life in lifetimes), default=now)
    ago = _AGO.match(value.strip())
    if ago is not None:
        return now - int(ago.group(1)) * _AGO_SECONDS[ago.group(2)]
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"cost --since: {value!r} is neither an ISO time (2026-11-01, 2026-11-01T12:00) nor an age (7d, 12h, 30m)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def cost_command(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start: ISO date/time (UTC) or an age like 7d; default: first launch."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    advise_flag: Annotated[
        bool, typer.Option("--advise", help="Add recommendations with their savings.")
    ] = False,
    *,
    sources: CostSources,
) -> None:
    """Show spend so far, the projected month and savings against fixed peak capacity; `--advise` adds advice."""
    now = sources.now()
    lifetimes = list(sources.lifetimes())
    start = parse_since(since, now, lifetimes)
    if start > now:
        raise UserError(f"cost --since: {since!r} is in the future; give a time before now")
    report = build_report(lifetimes, sources.prices, start, now, sources.desired())
    recommendations = advise(sources.hourly(), sources.settings(), sources.prices) if advise_flag else []
    if json_output:
        document = report.to_json()
        if advise_flag:
            document["recommendations"] = [r.to_json() for r in recommendations]
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(render_text(report))
    if advise_flag:
        typer.echo("")
        if not recommendations:
            typer.echo("advice: nothing to change; the observed load gives no reason to (see docs/cost.md)")
        for r in recommendations:
            typer.echo(f"advice: {r.message} (saves about {r.monthly_saving:.2f} {report.currency}/month)")


def register(app: typer.Typer) -> None:
    """Add `sprout cost`, reading lifetimes, load and settings from this machine's state store."""

    @app.command("cost")
    def cost(
        since: Annotated[
            str | None,
            typer.Option(
                "--since", help="Start: ISO date/time (UTC) or an age like 7d; default: first launch."
            ),
        ] = None,
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        advise_flag: Annotated[
            bool, typer.Option("--advise", help="Add recommendations with their savings.")
        ] = False,
    ) -> None:
        """Spend so far, the projected month and savings against fixed peak capacity; --advise adds advice."""
        from sprout.cost import observed
        from sprout.paths import Home
        from sprout.state import StateStore

        store = StateStore(Home.from_env().ensure().state_db)
        sources = CostSources(
            lifetimes=lambda: observed.lifetimes(store),
            prices=observed.pricing(store),
            desired=lambda: observed.desired(store),
            hourly=lambda: observed.hourly(store),
            settings=lambda: observed.settings(store),
        )
        cost_command(since, json_output, advise_flag, sources=sources)

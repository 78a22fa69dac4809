"""Plots of simulation runs: load against serving capacity, and instances, over time (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sprout.errors import UserError
from sprout.scale.simulate import SimulationResult

_COLOURS = {"sprout": "tab:green", "hpa": "tab:blue", "asg": "tab:orange", "fixed-peak": "tab:gray"}


def plot_results(title: str, results: Sequence[SimulationResult], path: Path) -> None:
    """Draw every result's serving capacity and instances against the trace's load into one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(
            "simulate --plot needs matplotlib; install it with `pip install 'sprout[plot]'`"
        ) from None
    runs = [r for r in results if r.series is not None]
    if not runs:
        raise UserError("simulate --plot: the runs kept no time series; run them with keep_series=True")
    figure, (load_axes, fleet_axes) = plt.subplots(2, 1, sharex=True, figsize=(12, 7), height_ratios=(3, 2))
    first = runs[0].series
    assert first is not None
    hours = [t / 3600.0 for t in first.times]
    load_axes.fill_between(hours, first.load, step="post", color="black", alpha=0.15, label="load")
    for run in runs:
        series = run.series
        assert series is not None
        colour = _COLOURS.get(run.policy)
        label = (
            f"{run.policy}: {run.violation_seconds} s violated, {run.instance_seconds / 3600:.0f} instance-h"
        )
        load_axes.step(hours, series.capacity, where="post", color=colour, linewidth=0.8, label=label)
        fleet_axes.step(hours, series.instances, where="post", color=colour, linewidth=0.8, label=run.policy)
    load_axes.set_ylabel("req/s: load and serving capacity")
    load_axes.set_title(title)
    load_axes.legend(loc="upper left", fontsize="small")
    fleet_axes.set_ylabel("instances")
    fleet_axes.set_xlabel("hours")
    fleet_axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)

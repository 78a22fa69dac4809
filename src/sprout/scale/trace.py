"""Load traces: `t_seconds,requests_per_second` CSV files, held constant over each step."""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

from sprout.errors import UserError


@dataclass(frozen=True, slots=True)
class Trace:
    """A request-rate trace sampled at a fixed step (seconds)."""

    name: str
    step: int
    rates: tuple[float, ...]

    @property
    def duration(self) -> int:
        """Length of the trace in seconds."""
        return self.step * len(self.rates)

    def per_second(self) -> list[float]:
        """The load in each second: every row's rate holds until the next row."""
        step = self.step
        return [rate for rate in self.rates for _ in range(step)]


def load_trace(path: Path) -> Trace:
    """Read a trace CSV; the step is the difference between the first two `t_seconds`."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise UserError(f"{path}: cannot read the trace ({error.strerror}); check the --trace path") from None
    try:
        times = [float(row["t_seconds"]) for row in rows]
        rates = tuple(float(row["requests_per_second"]) for row in rows)
    except (KeyError, TypeError, ValueError):
        raise UserError(
            f"{path}: not a trace; expected a CSV header `t_seconds,requests_per_second` and numbers below it"
        ) from None
    if len(times) < 2:
        raise UserError(f"{path}: a trace needs at least two rows to tell its step")
    step = round(times[1] - times[0])
    if step < 1 or any(abs(b - a - step) > 1e-6 for a, b in itertools.pairwise(times)):
        raise UserError(f"{path}: rows must be a fixed whole number of seconds apart (row 2 says {step}s)")
    if any(rate < 0 for rate in rates):
        raise UserError(f"{path}: request rates cannot be negative")
    return Trace(path.stem, step, rates)

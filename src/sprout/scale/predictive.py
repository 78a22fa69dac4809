"""Predictive scaling: Holt's linear (double exponential) smoothing of demand, forecast one warm-up ahead.

Holt's method keeps a level and a trend, each smoothed exponentially; the forecast `h` seconds ahead is
`level + h * trend`. Only a rising trend is projected: the forecast scales out ahead of a rise, never in
(target tracking and its stabilization window decide every scale-in).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Holt:
    """Holt's linear smoothing over one observation per second."""

    alpha: float = 0.2
    """Level smoothing: a fifth of each new second, so ~6 % noise moves the level little."""
    beta: float = 0.01
    """Trend smoothing: a rise must persist for tens of seconds before it is projected far."""
    level: float | None = None
    trend: float = 0.0

    def update(self, value: float) -> None:
        """Fold one observation (one second after the previous one) into level and trend."""
        if self.level is None:
            self.level = value
            return
        previous = self.level
        self.level = self.alpha * value + (1.0 - self.alpha) * (previous + self.trend)
        self.trend = self.beta * (self.level - previous) + (1.0 - self.beta) * self.trend

    def forecast(self, horizon: float) -> float | None:
        """The value expected `horizon` seconds ahead, projecting only a rising trend."""
        if self.level is None:
            return None
        return self.level + horizon * max(0.0, self.trend)

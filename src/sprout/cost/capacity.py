"""Desired capacity over time: what autoscaling decided, which is what savings are measured against.

An environment's desired capacity changes only by decisions (the autoscaler, `sprout scale`, `up` with
new bounds), each recorded as a `capacity` event. The fleet actually running differs from it during a
release (the new colour starts beside the old one) and while a warm fleet waits for a rollback: that
overlap is spend, never a "peak" that scaling saved against.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from sprout.cost.lifetimes import InstanceLifetime


@dataclass(frozen=True, slots=True)
class DesiredCapacity:
    """One environment's desired capacity: `initial` until the first change, then each (time, new value)."""

    initial: int
    changes: tuple[tuple[float, int], ...] = ()

    def at(self, when: float) -> int:
        """The desired capacity in force at `when` (a change applies from its instant on)."""
        index = bisect_right([t for t, _ in self.changes], when)
        return self.initial if index == 0 else self.changes[index - 1][1]

    def segments(self, begin: float, end: float) -> list[tuple[float, float, int]]:
        """[begin, end) cut where the desired capacity changes, with the value of each piece."""
        cuts = [begin, *(t for t, _ in self.changes if begin < t < end), end]
        return [(a, b, self.at(a)) for a, b in pairwise(cuts) if b > a]


def up_spans(lifetimes: Iterable[InstanceLifetime], since: float, until: float) -> list[tuple[float, float]]:
    """The union of the lifetimes inside [since, until): when at least one instance ran, in order."""
    spans = sorted(span for life in lifetimes if (span := life.clipped(since, until)) is not None)
    merged: list[tuple[float, float]] = []
    for begin, end in spans:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def most_at_once(lifetimes: Sequence[InstanceLifetime]) -> int:
    """The most of these instances that ran at the same time (a stop counts before a start at one instant)."""
    changes = sorted(
        [(life.start, 1) for life in lifetimes]
        + [(life.end, -1) for life in lifetimes if life.end is not None]
    )
    running = peak = 0
    for _, delta in changes:
        running += delta
        peak = max(peak, running)
    return peak

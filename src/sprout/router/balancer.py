"""Choosing a target: a group by smooth weighted round-robin, then the less loaded of two random healthy targets.

Groups are chosen as nginx's weighted round-robin does (each eligible group gains its weight, the
highest leads and gives back the total), so a canary at 20 % gets exactly 1 request in 5 rather than
20 % on average: its exposure, and what a bad canary can break, are what the weights say.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sprout.router.target import Target

_random: Final = random.random


class Group:
    """A weighted target group at runtime; `healthy` is kept current by the router on state changes."""

    __slots__ = ("current", "healthy", "name", "targets", "version", "weight")

    def __init__(self, name: str, weight: int, version: str, targets: list[Target]) -> None:
        self.name = name
        self.weight = weight
        self.version = version
        self.targets = targets
        self.healthy: list[Target] = []
        self.current = 0


def pick_two(healthy: Sequence[Target], exclude: Sequence[Target]) -> Target | None:
    """Power of two choices: the less loaded of two random candidates; a random pick breaks ties."""
    if exclude:
        healthy = [t for t in healthy if t not in exclude]
    n = len(healthy)
    if n == 0:
        return None
    if n == 1:
        return healthy[0]
    i = int(_random() * n)
    j = int(_random() * (n - 1))
    if j >= i:
        j += 1
    a = healthy[i]
    b = healthy[j]
    return b if b.stats.in_flight < a.stats.in_flight else a


def choose(groups: Sequence[Group], exclude: Sequence[Target] = ()) -> Target | None:
    """A target for one request, or None when no group with weight > 0 has a healthy target left."""
    if len(groups) == 1:
        g = groups[0]
        return pick_two(g.healthy, exclude) if g.weight > 0 else None
    total = 0
    best: Group | None = None
    for g in groups:
        if g.weight > 0 and g.healthy:
            total += g.weight
            g.current += g.weight
            if best is None or g.current > best.current:
                best = g
    if best is None:
        return None
    best.current -= total
    # Fall through to the other weighted groups only when the chosen one is exhausted by `exclude`.
    order = [best, *[g for g in groups if g.weight > 0 and g.healthy and g is not best]]
    for g in order:
        target = pick_two(g.healthy, exclude)
        if target is not None:
            return target
    return None

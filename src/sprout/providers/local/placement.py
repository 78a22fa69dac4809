"""Spread instances evenly across zones, like an Auto Scaling Group balancing its availability zones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sprout.errors import UserError


def place(zones: Sequence[str], existing_counts: Mapping[str, int], n: int) -> list[str]:
    """The zones for `n` new instances: each goes to the zone with the fewest, ties to the earliest listed."""
    if n < 0:
        raise UserError(f"cannot place {n} instances; the count must be 0 or more")
    if n and not zones:
        raise UserError("cannot place instances without zones; list at least one in [instances] zones")
    counts = {zone: existing_counts.get(zone, 0) for zone in dict.fromkeys(zones)}
    order = {zone: index for index, zone in enumerate(counts)}
    chosen: list[str] = []
    for _ in range(n):
        zone = min(counts, key=lambda z: (counts[z], order[z]))
        counts[zone] += 1
        chosen.append(zone)
    return chosen


def surplus(zones: Sequence[str], existing_counts: Mapping[str, int], n: int) -> list[str]:
    """The zones to remove `n` instances from, each time from the fullest zone (unknown zones first)."""
    counts = dict(existing_counts)
    listed = {zone: index for index, zone in enumerate(dict.fromkeys(zones))}
    chosen: list[str] = []
    for _ in range(n):
        candidates = [zone for zone, count in counts.items() if count > 0]
        if not candidates:
            break
        # A zone no longer in the manifest empties first; then the fullest; ties from the last listed.
        zone = max(candidates, key=lambda z: (z not in listed, counts[z], listed.get(z, -1)))
        counts[zone] -= 1
        chosen.append(zone)
    return chosen

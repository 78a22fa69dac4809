"""Scale-in victim selection: keep the fleet balanced across zones.

Like EC2 Auto Scaling's default termination policy, each victim comes from the zone that has the most
instances left (ties go to the zone name that sorts first). Within that zone Sprout removes the *newest*
instance first: the newest were launched for the peak that is now ending, while the oldest have proven
their health and warmed their caches. (AWS then prefers the oldest launch configuration and the instance
closest to the next billing hour; Sprout releases replace whole fleets and bills per second, so neither
applies.)
"""

from __future__ import annotations

from collections.abc import Sequence


def choose_victims(instances: Sequence[tuple[str, str, float]], n: int) -> list[str]:
    """Ids of `n` instances `(id, zone, launched_at)` to drain, evenly across zones, newest first."""
    by_zone: dict[str, list[tuple[float, str]]] = {}
    for instance_id, zone, launched_at in instances:
        by_zone.setdefault(zone, []).append((launched_at, instance_id))
    for members in by_zone.values():
        members.sort()
    victims: list[str] = []
    for _ in range(min(n, len(instances))):
        zone = min(by_zone, key=lambda z: (-len(by_zone[z]), z))
        victims.append(by_zone[zone].pop()[1])
        if not by_zone[zone]:
            del by_zone[zone]
    return victims

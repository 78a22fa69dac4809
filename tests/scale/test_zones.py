"""Scale-in victim selection keeps zones balanced and removes the newest first."""

from __future__ import annotations

from collections import Counter

import pytest

from sprout.scale import choose_victims

FLEET = [
    ("a1", "a", 100.0),
    ("a2", "a", 200.0),
    ("a3", "a", 300.0),
    ("a4", "a", 400.0),
    ("b1", "b", 150.0),
    ("b2", "b", 250.0),
    ("c1", "c", 50.0),
]


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, []),
        (1, ["a4"]),
        (2, ["a4", "a3"]),
        (3, ["a4", "a3", "a2"]),
        (4, ["a4", "a3", "a2", "b2"]),
        (7, ["a4", "a3", "a2", "b2", "a1", "b1", "c1"]),
        (9, ["a4", "a3", "a2", "b2", "a1", "b1", "c1"]),
    ],
)
def test_victims_in_order(n: int, expected: list[str]) -> None:
    assert choose_victims(FLEET, n) == expected


def test_scale_in_leaves_zones_within_one_of_each_other() -> None:
    fleet = [(f"{zone}{i}", zone, float(i)) for zone in "ab" for i in range(6)]
    for n in range(12):
        victims = set(choose_victims(fleet, n))
        left = Counter(zone for instance_id, zone, _ in fleet if instance_id not in victims)
        counts = [left.get("a", 0), left.get("b", 0)]
        assert max(counts) - min(counts) <= 1, (n, counts)

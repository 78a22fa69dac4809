"""Zone placement: new instances fill the emptiest zone, removals empty the fullest (tables)."""

from __future__ import annotations

import pytest

from sprout.errors import UserError
from sprout.providers.local.placement import place, surplus


@pytest.mark.parametrize(
    ("zones", "existing", "n", "expected"),
    [
        (["a", "b"], {}, 2, ["a", "b"]),
        (["a", "b"], {}, 3, ["a", "b", "a"]),
        (["a", "b"], {"a": 1}, 1, ["b"]),
        (["a", "b"], {"a": 1, "b": 1}, 2, ["a", "b"]),
        (["a", "b", "c"], {"a": 2, "c": 1}, 4, ["b", "b", "c", "a"]),
        (["a", "b"], {"a": 3, "z": 5}, 2, ["b", "b"]),
        (["b", "a"], {}, 1, ["b"]),
        (["a"], {}, 3, ["a", "a", "a"]),
        (["a", "a", "b"], {}, 2, ["a", "b"]),
        (["a", "b"], {}, 0, []),
        ([], {}, 0, []),
    ],
)
def test_place(zones: list[str], existing: dict[str, int], n: int, expected: list[str]) -> None:
    assert place(zones, existing, n) == expected


@pytest.mark.parametrize(
    ("zones", "existing", "n", "expected"),
    [
        (["a", "b"], {"a": 2, "b": 1}, 1, ["a"]),
        (["a", "b"], {"a": 1, "b": 1}, 1, ["b"]),
        (["a", "b"], {"a": 2, "b": 2}, 3, ["b", "a", "b"]),
        (["a"], {"a": 1, "old": 1}, 1, ["old"]),
        (["a", "b"], {"a": 1}, 3, ["a"]),
    ],
)
def test_surplus(zones: list[str], existing: dict[str, int], n: int, expected: list[str]) -> None:
    assert surplus(zones, existing, n) == expected


def test_place_errors() -> None:
    with pytest.raises(UserError, match=r"^cannot place -1 instances; the count must be 0 or more$"):
        place(["a"], {}, -1)
    with pytest.raises(
        UserError, match=r"^cannot place instances without zones; list at least one in \[instances\] zones$"
    ):
        place([], {}, 1)

"""Which router readings may drive a decision: none across or right after a stall of the metrics source."""

from __future__ import annotations

import pytest

from sprout.scale.readings import STALL_GAP, STALL_SETTLE, Verdict, judge_reading

T = 1000.0


@pytest.mark.parametrize(
    ("previous_at", "now", "settle_until", "expected"),
    [
        (None, T, 0.0, Verdict(False, "first reading: a baseline", 0.0)),
        (T - 1.0, T, 0.0, Verdict(True, "", 0.0)),
        (T - 2.9, T, 0.0, Verdict(True, "", 0.0)),
        (T, T, 0.0, Verdict(False, "no time has passed since the previous reading", 0.0)),
        (
            T - STALL_GAP,
            T,
            0.0,
            Verdict(
                False,
                "3.0s since the previous reading: the metrics source stalled; readings resume in 2s",
                T + STALL_SETTLE,
            ),
        ),
        (
            T - 6.2,
            T,
            0.0,
            Verdict(
                False,
                "6.2s since the previous reading: the metrics source stalled; readings resume in 2s",
                T + 2.0,
            ),
        ),
        (T - 1.0, T, T + 1.0, Verdict(False, "settling after a stall of the metrics source", T + 1.0)),
        (T - 1.0, T, T, Verdict(True, "", T)),
    ],
)
def test_judge_reading(previous_at: float | None, now: float, settle_until: float, expected: Verdict) -> None:
    assert judge_reading(previous_at, now, settle_until) == expected


def test_a_stall_discards_the_burst_that_follows_it() -> None:
    # Readings every second, a 5 s stall between t=10 and t=16, then every second again.
    times = [float(t) for t in range(11)] + [16.0 + t for t in range(6)]
    previous, settle, used = None, 0.0, []
    for now in times:
        verdict = judge_reading(previous, now, settle)
        previous, settle = now, verdict.settle_until
        if verdict.usable:
            used.append(now)
    assert used == [*(float(t) for t in range(1, 11)), 18.0, 19.0, 20.0, 21.0]

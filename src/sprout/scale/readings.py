"""Which metrics readings may drive a decision: none taken across or right after a stall of the source.

The scaler turns two cumulative router readings into per-second figures. When the router stops answering
for a while (a stall, a stopped process, a host under memory pressure) the clients' requests queue up; when
it resumes, the queue is served at once and the next readings show a burst that no steady load explains.
So a reading taken `STALL_GAP` seconds or more after the previous one only starts a new baseline, and the
readings of the next `STALL_SETTLE` seconds are discarded too; the scaler judges again after that.
"""

from __future__ import annotations

from typing import NamedTuple

#: A gap between two readings this long (three autoscaler ticks) means the metrics source stalled.
STALL_GAP = 3.0
#: Readings this soon after a stall are discarded: the queue the stall built is being released.
STALL_SETTLE = 2.0


class Verdict(NamedTuple):
    """Whether a reading may be used, why not, and until when readings are discarded."""

    usable: bool
    reason: str
    settle_until: float


def judge_reading(previous_at: float | None, now: float, settle_until: float) -> Verdict:
    """Whether the reading taken at `now` (the previous one at `previous_at`) may drive a decision."""
    if previous_at is None:
        return Verdict(False, "first reading: a baseline", settle_until)
    gap = now - previous_at
    if gap <= 0:
        return Verdict(False, "no time has passed since the previous reading", settle_until)
    if gap >= STALL_GAP:
        return Verdict(
            False,
            f"{gap:.1f}s since the previous reading: the metrics source stalled; readings resume in {STALL_SETTLE:g}s",
            now + STALL_SETTLE,
        )
    if now < settle_until:
        return Verdict(False, "settling after a stall of the metrics source", settle_until)
    return Verdict(True, "", settle_until)

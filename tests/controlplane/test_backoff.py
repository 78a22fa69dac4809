"""A failing environment's launches back off, and its report says since when and how often it retries."""

from __future__ import annotations

from sprout.controlplane.backoff import Backoff


def test_launches_back_off_and_the_report_follows() -> None:
    backoff = Backoff()
    assert backoff.report() is None
    seen = []
    # Two instances of one launch fail together (one round), then one per round as launches resume.
    for now in (100.0, 100.2, 102.2, 106.2, 114.2, 130.2, 162.2, 194.2):
        backoff.failed(now)
        seen.append((round(backoff.not_before - now, 6), backoff.report()))
    assert [delay for delay, _ in seen] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert seen[-1][1] == {"since": 100.0, "retry_every": 32.0, "failures": 8}
    assert seen[1][1] == {"since": 100.0, "retry_every": 2.0, "failures": 2}


def test_an_instance_replaced_after_its_grace_retries_at_the_pace_of_the_grace() -> None:
    backoff = Backoff()
    backoff.failed(60.0)
    backoff.failed(121.0)
    assert backoff.report() == {"since": 60.0, "retry_every": 61.0, "failures": 2}


def test_a_healthy_instance_ends_the_failing() -> None:
    backoff = Backoff()
    backoff.failed(1.0)
    backoff.failed(3.0)
    backoff.succeeded()
    assert (backoff.report(), backoff.not_before) == (None, 0.0)
    backoff.failed(50.0)
    assert backoff.report() == {"since": 50.0, "retry_every": 1.0, "failures": 1}

"""The daemon's supervised loops: a nudge runs the job at once, a stop ends the thread without waiting out a tick."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sprout.loops import Loop, event_hook
from sprout.state import StateStore


def test_a_nudge_runs_the_job_now_not_at_the_next_tick() -> None:
    ran = threading.Event()
    ticker = Loop("count", ran.set, 60.0, first_delay=60.0)
    ticker.start()
    try:
        assert not ran.wait(0.2), "nothing runs before the first tick"
        ticker.nudge()
        assert ran.wait(2.0), "a nudge runs the job without waiting for the 60 s tick"
    finally:
        started = time.monotonic()
        ticker.stop()
        assert time.monotonic() - started < 2.0, "stop wakes the thread instead of waiting out the tick"


def test_a_failing_job_is_recorded_once_and_retried(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    calls: list[int] = []

    def job() -> None:
        calls.append(1)
        raise RuntimeError("database is locked")

    ticker = Loop("flaky", job, 0.01, on_error=event_hook(store), backoff_max=0.01)
    ticker.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    ticker.stop()
    assert len(calls) >= 3
    errors = [e for e in store.list_events(None, None) if e.kind == "flaky.error"]
    assert [e.message for e in errors] == ["RuntimeError: database is locked"]

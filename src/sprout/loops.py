"""Supervised loops: a job run forever on its own thread, surviving every error, reporting its last good pass.

A loop that must run forever catches everything its job raises *and* everything its error path raises
(recording an event fails exactly when the state store is locked or the disk is full), logs it, backs
off and carries on. Each loop keeps its last good pass and last error, so the daemon can report a loop
that has not passed for `STALL_PERIODS` periods as stalled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sprout.state.journal import Journal

log = logging.getLogger(__name__)

#: A loop that has not passed for this many periods is reported as stalled.
STALL_PERIODS = 3
#: Longest wait between two tries of a failing job: the delay doubles from the period up to this.
BACKOFF_MAX = 5.0

ErrorHook = Callable[[str, str, BaseException], None]


def event_hook(store: Journal) -> ErrorHook:
    """An error hook recording each distinct failure as a `<loop>.error` event."""

    def record(name: str, message: str, exc: BaseException) -> None:
        store.record_event(None, None, f"{name}.error", message)

    return record


@dataclass(frozen=True)
class LoopHealth:
    """One loop's report: when it last passed, its last error, and whether it is stalled."""

    name: str
    period: float
    last_pass: float | None
    last_error: str | None
    last_error_at: float | None
    failures: int
    stalled: bool

    def to_json(self) -> dict[str, object]:
        """The report as a JSON object (status documents)."""
        return {
            "name": self.name,
            "period": self.period,
            "last_pass": self.last_pass,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "failures": self.failures,
            "stalled": self.stalled,
        }


class Loop:
    """Runs `job` every `period` seconds (first after `first_delay`) until stopped, whatever it raises.

    A failing job is retried after a delay that doubles from `period` up to `backoff_max`; each distinct
    error is logged with its traceback and handed to `on_error` once (an error there is logged too).
    """

    def __init__(
        self,
        name: str,
        job: Callable[[], object],
        period: float,
        *,
        first_delay: float = 0.0,
        on_error: ErrorHook | None = None,
        backoff_max: float = BACKOFF_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.period = period
        self._job = job
        self._first_delay = first_delay
        self._on_error = on_error
        self._backoff_max = max(backoff_max, period)
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started_at: float | None = None
        self._last_pass: float | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._failures = 0
        # The error already reported in this run of failures (each distinct one is reported once).
        self._reported: str | None = None

    def start(self) -> None:
        """Start the loop's thread."""
        self._started_at = self._clock()
        self._thread.start()

    def nudge(self) -> None:
        """Run the job now rather than at the next tick (something it waits for has happened)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current run."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def health(self) -> LoopHealth:
        """This loop's report right now."""
        now = self._clock()
        # A loop that never passed is measured from when its first pass was due.
        since = self._last_pass
        if since is None and self._started_at is not None:
            since = self._started_at + self._first_delay
        stalled = (
            not self._stop.is_set() and self._started_at is not None and not self._thread.is_alive()
        ) or (since is not None and now - since > STALL_PERIODS * self.period)
        return LoopHealth(
            self.name,
            self.period,
            self._last_pass,
            self._last_error,
            self._last_error_at,
            self._failures,
            stalled,
        )

    def run_once(self) -> bool:
        """Run the job once, reporting a failure instead of raising it; True if it passed."""
        try:
            self._job()
        except Exception as exc:
            self._failed(exc)
            return False
        self._last_pass = self._clock()
        if self._failures:
            _log(logging.INFO, "%s passes again after %d failed tries", self.name, self._failures)
        self._failures = 0
        self._reported = None
        return True

    def _run(self) -> None:
        delay = self._first_delay
        while True:
            if delay > 0:
                self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.run_once():
                delay = self.period
            else:
                delay = min(self._backoff_max, self.period * 2 ** min(self._failures - 1, 20))

    def _failed(self, exc: Exception) -> None:
        """Log and report an error of the job; nothing raised here may end the loop."""
        message = f"{type(exc).__name__}: {exc}"
        # The cause first, then the count: a health read while the hook below runs (it may wait on a
        # locked or full store) never sees a failure without its error.
        self._last_error = message
        self._last_error_at = self._clock()
        self._failures += 1
        if message == self._reported:
            return
        self._reported = message
        _log(logging.ERROR, "%s failed; retrying", self.name, exc=exc)
        if self._on_error is not None:
            try:
                self._on_error(self.name, message, exc)
            except Exception as hook_exc:
                # Reporting failed too (state store locked, disk full): the log line above is the report,
                # and the next failure tries to record it again.
                _log(logging.ERROR, "%s: reporting its failure failed too: %s", self.name, hook_exc)
                message = f"{message} (not recorded: {type(hook_exc).__name__}: {hook_exc})"
                self._reported = None
        self._last_error = message


def _log(level: int, msg: str, *args: object, exc: BaseException | None = None) -> None:
    """Log without ever raising (a full disk under the daemon's log must not end a loop)."""
    try:
        log.log(level, msg, *args, exc_info=exc)
    except Exception:
        return

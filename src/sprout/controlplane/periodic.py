"""A background thread that runs one job every `interval` seconds, logging each distinct failure once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sprout.state import StateStore

log = logging.getLogger(__name__)


class Periodic:
    """Runs `job` every `interval` seconds (first after `first_delay`, default `interval`) until stopped;
    a failing run is retried on the next tick."""

    def __init__(
        self,
        name: str,
        job: Callable[[], object],
        interval: float,
        store: StateStore,
        first_delay: float | None = None,
    ) -> None:
        self.name = name
        self._job = job
        self._interval = interval
        self._first_delay = interval if first_delay is None else first_delay
        self._store = store
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._last_error = ""

    def start(self) -> None:
        """Start ticking."""
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

    def _run(self) -> None:
        delay = self._first_delay
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            delay = self._interval
            try:
                self._job()
                self._last_error = ""
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                if message != self._last_error:
                    log.exception("%s failed", self.name)
                    self._store.record_event(None, None, f"{self.name}.error", message)
                    self._last_error = message

"""A background thread that keeps the log store up to date with every discovered log file."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from sprout.logs.store import LogStore

DEFAULT_INTERVAL = 0.5
_STOP_TIMEOUT = 10.0

log = logging.getLogger(__name__)

Discover = Callable[[], list[tuple[Path, str]]]


class LogIngester:
    """Every `interval` seconds, ingest each (path, source kind) that `discover` returns into `store`."""

    def __init__(self, store: LogStore, discover: Discover, interval: float = DEFAULT_INTERVAL) -> None:
        self.store = store
        self.discover = discover
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ingest_once(self) -> int:
        """One pass over every discovered file; return how many lines were stored.

        A file that cannot be read this pass is logged and retried on the next one, so one bad file
        never stalls the others.
        """
        added = 0
        for path, kind in self.discover():
            try:
                added += self.store.ingest_file(path, kind)
            except (OSError, sqlite3.Error) as exc:
                log.warning("log ingest: cannot read %s (%s); retrying next pass", path, exc)
        return added

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sprout-log-ingester", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a final pass, so lines written before the stop are stored."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(_STOP_TIMEOUT)
        self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.ingest_once()
            except Exception:
                # The discover callback belongs to the caller; its failure must not end ingestion.
                log.exception("log ingest: pass failed; retrying in %.1fs", self.interval)
            if self._stop.is_set():
                return
            self._stop.wait(self.interval)

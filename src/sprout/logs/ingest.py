"""A supervised loop that keeps the log store up to date with every discovered log file.

It runs at a lower CPU priority than everything else in the daemon and than the router (a thread's own
nice value on Linux): on a busy machine the data plane and the control plane's decisions come first,
and lines wait a little longer to become queryable.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from sprout.accessfiles import AccessFiles, Settings
from sprout.diskfull import is_disk_full
from sprout.logs.store import LogStore
from sprout.loops import ErrorHook, Loop

DEFAULT_INTERVAL = 0.5
_STOP_TIMEOUT = 10.0
#: How much nicer than the daemon the ingest thread runs (the router runs at the daemon's priority).
NICE = 10

log = logging.getLogger(__name__)

Discover = Callable[[], list[tuple[Path, str]]]


class LogIngester:
    """Every `interval` seconds, ingest each (path, source kind) `discover` returns into `store`.

    With `access`, each pass also compresses rotated access files and applies their retention.
    """

    def __init__(
        self,
        store: LogStore,
        discover: Discover,
        interval: float = DEFAULT_INTERVAL,
        on_error: ErrorHook | None = None,
        access: AccessFiles | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.discover = discover
        self.interval = interval
        self.access = access
        self.settings = settings or Settings()
        #: Its failures (the discover callback's, a full disk's) never end ingestion.
        self.loop = Loop("logs", self._background_pass, interval, on_error=on_error)
        self._started = False
        self._niced = False

    def _background_pass(self) -> None:
        if not self._niced:
            self._niced = True
            # Linux gives each thread its own nice value; elsewhere this lowers the whole process.
            os.setpriority(
                os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + NICE
            )
        self.ingest_once()
        if self.access is not None:
            self.access.maintain(self.settings.keep_bytes, self.settings.keep_days)

    def ingest_once(self) -> int:
        """One pass over every discovered file; return how many lines were stored.

        A file that cannot be read this pass is logged and retried on the next one, so one bad file
        never stalls the others; a full disk fails the whole pass (every file would fail the same way),
        and the lines are stored once space returns.
        """
        added = 0
        for path, kind in self.discover():
            try:
                added += self.store.ingest_file(path, kind)
            except (OSError, sqlite3.Error) as exc:
                if is_disk_full(exc):
                    raise
                log.warning("log ingest: cannot read %s (%s); retrying next pass", path, exc)
        return added

    def start(self) -> None:
        """Start the background loop (once)."""
        if not self._started:
            self._started = True
            self.loop.start()

    def stop(self) -> None:
        """Stop the loop, then make a final pass, so lines written before the stop are stored."""
        if not self._started:
            return
        self.loop.stop(_STOP_TIMEOUT)
        self.loop.run_once()

"""The disk under SPROUT_HOME: notice when it is full, say so once (when space allows), and when it is not.

A full disk must degrade Sprout, never stop it: agents drop and count their app's output, the router
drops access-log rows, the log store and the state store refuse writes and retry later. The daemon
learns of it two ways: a writer of its own fails with "no space" (`noticed`), or the free space of the
home's file system falls below `LOW_SPACE` (`check`, run by a supervised loop). The `disk.full` event
is recorded once, as soon as the state store can take it; `disk.ok` when space is back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sprout.diskfull import is_disk_full

if TYPE_CHECKING:
    from sprout.state.journal import Journal

log = logging.getLogger(__name__)

#: Free bytes below which the home's file system counts as full.
LOW_SPACE = 256 * 1024
CHECK_INTERVAL = 1.0


def stamp(when: float) -> str:
    """A time for status lines and events: UTC, to the second."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class DiskWatch:
    """Whether the home's disk is full, since when, and whether that has been recorded yet."""

    def __init__(self, root: Path, store: Journal, clock: Callable[[], float] = time.time) -> None:
        self._root = root
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self.full_since: float | None = None
        self._recorded = False

    def noticed(self, exc: BaseException) -> None:
        """A writer failed with `exc`: if that was a full disk, the disk is full from now on."""
        if is_disk_full(exc):
            self._mark_full()

    def check(self) -> None:
        """Compare the free space with `LOW_SPACE`, and record what changed when the store can take it."""
        st = os.statvfs(self._root)
        free = st.f_bavail * st.f_frsize
        if free < LOW_SPACE:
            self._mark_full()
        with self._lock:
            since, recorded = self.full_since, self._recorded
        if since is None:
            return
        if not recorded and self._record(
            "disk.full",
            f"disk full since {stamp(since)} under {self._root}: app output and access-log rows are "
            "dropped and counted, logs wait to be stored; free space there",
            since=since,
        ):
            with self._lock:
                self._recorded = True
        if free >= LOW_SPACE and self._record(
            "disk.ok",
            f"disk has space again under {self._root} ({free // 1024} KiB free; full since {stamp(since)})",
            since=since,
        ):
            with self._lock:
                self.full_since, self._recorded = None, False

    def report(self) -> dict[str, Any]:
        """For status documents: `full_since` (a time, or None)."""
        return {"full_since": self.full_since}

    def _mark_full(self) -> None:
        with self._lock:
            if self.full_since is None:
                self.full_since = self._clock()
                log.error("disk full under %s: degrading until space returns", self._root)

    def _record(self, kind: str, message: str, **data: Any) -> bool:
        """Record an event; False (to retry on the next check) when the disk is still too full for it."""
        try:
            self._store.record_event(None, None, kind, message, **data)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            return False
        return True

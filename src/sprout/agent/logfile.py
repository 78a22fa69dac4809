"""An instance's log file: every line of the app and of the agent as one JSON record, appended.

Writing starts in two steps so the app can start first: until `start_writing()` the records are
kept in memory with their own timestamps (the record formatter's import is the slowest part of the
agent's start), then they are flushed in order and every later record goes straight to the file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from sprout.agent.spec import AgentSpec


class InstanceLog:
    """Appends log records for one instance; safe to call from threads and signal handlers."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        path = spec.log_file
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        # One os.write per whole line on an O_APPEND descriptor: lines from the two output pumps and
        # the agent never interleave, and no lock is needed (a lock could deadlock a signal handler).
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._format: Callable[[float, str, str], bytes] | None = None
        self._pending: list[tuple[float, str, str]] = []
        # Guards the switch from keeping to writing; reentrant because a signal handler may emit.
        self._switch = threading.RLock()

    def emit(self, stream: str, msg: str) -> None:
        """Append one line from `stream` (stdout, stderr or system)."""
        ts = round(time.time(), 6)
        format_record = self._format
        if format_record is None:
            with self._switch:
                format_record = self._format
                if format_record is None:
                    self._pending.append((ts, stream, msg))
                    return
        fd = self._fd
        if fd is not None:
            os.write(fd, format_record(ts, stream, msg))

    def start_writing(self) -> None:
        """Load the record format, write what was kept, and write every later record at once."""
        if self._format is not None:
            return
        from sprout.logs.record import LogRecord, Stream, format_line

        spec = self.spec

        def format_record(ts: float, stream: str, msg: str) -> bytes:
            kind: Stream = "stdout" if stream == "stdout" else "stderr" if stream == "stderr" else "system"
            record = LogRecord(ts, kind, spec.instance_id, spec.app, spec.env, spec.version, spec.zone, msg)
            return format_line(record).encode("utf-8")

        with self._switch:
            self._flush(format_record)
            self._format = format_record
            # A signal handler may have kept one more record between the flush and the switch.
            self._flush(format_record)

    def _flush(self, format_record: Callable[[float, str, str], bytes]) -> None:
        fd = self._fd
        while self._pending:
            ts, stream, msg = self._pending.pop(0)
            if fd is not None:
                os.write(fd, format_record(ts, stream, msg))

    def close(self) -> None:
        """Flush what is kept and stop writing; later emits are dropped."""
        self.start_writing()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

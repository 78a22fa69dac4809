"""An instance's log file: every line of the app and of the agent as one JSON record, appended.

Writing starts in two steps so the app can start first: until `start_writing()` the records are
kept in memory with their own timestamps (the record formatter's import is the slowest part of the
agent's start), then they are flushed in order and every later record goes straight to the file.

A record that cannot be written (a full disk) is dropped and counted, never raised: the app's output
keeps flowing. The first record written afterwards is a `system` line saying how many were lost.
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
        #: Records dropped since the last one written, when the first of them was, and why.
        self.dropped = 0
        self._dropped_since = 0.0
        self._drop_reason = ""
        # A failed write may have left half a line: the next write starts on a new line.
        self._torn = False

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
        self._append(format_record, ts, stream, msg)

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
        while self._pending:
            ts, stream, msg = self._pending.pop(0)
            self._append(format_record, ts, stream, msg)

    def _append(
        self, format_record: Callable[[float, str, str], bytes], ts: float, stream: str, msg: str
    ) -> None:
        """Write one record, after the note of what was dropped before it; drop and count it if it fails."""
        if self._fd is None:
            return
        if self.dropped:
            since = time.strftime("%H:%M:%S", time.gmtime(self._dropped_since))
            note = f"{self.dropped} lines of output dropped since {since} UTC: the log could not be written ({self._drop_reason})"
            if self._write(format_record(ts, "system", note)):
                self.dropped = 0
        if self.dropped or not self._write(format_record(ts, stream, msg)):
            if not self.dropped:
                self._dropped_since = ts
            self.dropped += 1

    def _write(self, data: bytes) -> bool:
        """Write one whole line (one os.write when it fits); False when the file refused it."""
        fd = self._fd
        if fd is None:
            return True
        view = memoryview(b"\n" + data if self._torn else data)
        try:
            while view:
                written = os.write(fd, view)
                self._torn = True
                view = view[written:]
        except OSError as exc:
            self._drop_reason = exc.strerror or str(exc)
            return False
        self._torn = False
        return True

    def close(self) -> None:
        """Flush what is kept and stop writing; later emits are dropped."""
        self.start_writing()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

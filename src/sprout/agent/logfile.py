"""An instance's log file: every line of the app and of the agent as one JSON record, appended."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import cast

from sprout.logs.record import LogRecord, Stream, format_line
from sprout.providers.base import InstanceSpec


class InstanceLog:
    """Appends `LogRecord` lines for one instance; safe to call from threads and signal handlers."""

    def __init__(self, spec: InstanceSpec) -> None:
        self.spec = spec
        path = Path(spec.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One os.write per whole line on an O_APPEND descriptor: lines from the two output pumps and
        # the agent never interleave, and no lock is needed (a lock could deadlock a signal handler).
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def emit(self, stream: str, msg: str) -> None:
        """Append one line from `stream` (stdout, stderr or system)."""
        fd = self._fd
        if fd is None:
            return
        spec = self.spec
        record = LogRecord(
            ts=round(time.time(), 6),
            stream=cast(Stream, stream),
            instance=spec.instance_id,
            app=spec.app,
            env=spec.env,
            version=spec.version,
            zone=spec.zone,
            msg=msg,
        )
        os.write(fd, format_line(record).encode("utf-8"))

    def close(self) -> None:
        """Stop writing; later emits are dropped."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

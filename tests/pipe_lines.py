"""Lines a child process prints, read with a deadline: select on the pipe and no hidden read buffer, so
lines the child printed together are never left unread in a buffer select cannot see."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable


class PipeLines:
    """The lines read so far from a child's stdout pipe (opened unbuffered or not: only its fd is read)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self._partial = b""
        self.closed = False

    def read(self, seconds: float) -> list[str]:
        """Wait up to `seconds` for more of the pipe; every whole line read so far."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, seconds))
        if ready and not self.closed:
            chunk = os.read(self.fd, 65536)
            self.closed = not chunk
            *whole, self._partial = (self._partial + chunk).split(b"\n")
            self.lines += [line.decode("utf-8", "replace") + "\n" for line in whole]
        return self.lines

    def until(self, done: Callable[[list[str]], bool], seconds: float) -> list[str]:
        """Read until `done(lines)` holds, the pipe closes or `seconds` pass; every whole line read."""
        deadline = time.monotonic() + seconds
        while not done(self.lines) and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.read(left)
        return self.lines

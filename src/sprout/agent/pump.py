"""Pump a child's stdout and stderr, line by line, into a log callback on two small threads."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from typing import IO

#: Longest piece of one line kept as one log record; longer lines are split, never held in memory whole.
MAX_LINE = 64 * 1024


def pump_lines(proc: subprocess.Popen[bytes], emit: Callable[[str, str], None]) -> list[threading.Thread]:
    """Start one daemon thread per pipe of `proc`, calling emit(stream, line) until the pipe closes."""
    threads = []
    for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        if pipe is None:
            continue
        thread = threading.Thread(target=_pump, args=(pipe, name, emit), name=f"pump-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _pump(pipe: IO[bytes], stream: str, emit: Callable[[str, str], None]) -> None:
    """Read `pipe` to its end, emitting each line without its line ending, whatever emitting does.

    The pipe is read until the app closes it, even when a line cannot be logged: a pump that stopped
    reading would leave the app blocked on a full pipe, and one that closed it would break its output.
    """
    with pipe:
        while line := pipe.readline(MAX_LINE):
            try:
                emit(stream, line.decode("utf-8", errors="replace").rstrip("\r\n"))
            except Exception:
                # The log counts what it cannot write; whatever else fails here costs this line only.
                continue

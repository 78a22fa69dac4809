"""Detached helper processes proven by pid + start time: spawn, check, terminate, record as JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from sprout.process_start import Start


@dataclass(frozen=True)
class ProcessRecord:
    """Who a process is: its pid, when it started, and a string its command line must contain."""

    pid: int
    started: Start
    marker: str

    def alive(self) -> bool:
        """True while this very process runs (not a recycled pid, not a zombie)."""
        try:
            proc = psutil.Process(self.pid)
            if not self.started.matches(proc):
                return False
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return any(self.marker in part for part in proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def uptime(self) -> float:
        """Seconds since the process started."""
        return max(0.0, time.time() - self.started.at)


def spawn_detached(
    cmd: Sequence[str],
    log_path: Path,
    marker: str,
    env: Mapping[str, str] | None = None,
    stdout: Path | None = None,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start `cmd` in its own session (it outlives its parent), output appended to `log_path`
    (or only its stderr, when its stdout is appended to `stdout`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log, open(stdout or os.devnull, "ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out if stdout is not None else log,
            stderr=log if stdout is not None else subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            close_fds=True,
        )
    try:
        started = Start.of(psutil.Process(proc.pid))
    except psutil.NoSuchProcess:
        # Gone already: a start nothing matches, so the record reads as not alive.
        started = Start(at=time.time())
    return proc, ProcessRecord(pid=proc.pid, started=started, marker=marker)


def terminate(record: ProcessRecord, timeout: float) -> bool:
    """SIGTERM the process, wait up to `timeout`, then SIGKILL; True when it is gone (idempotent)."""
    if not record.alive():
        return True
    try:
        proc = psutil.Process(record.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
        return True
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        pass
    try:
        proc.kill()
        proc.wait(5.0)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired):
        pass
    return not record.alive()


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write a small JSON file atomically (temp file + rename), private to the user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(dict(data), out, indent=2, sort_keys=True)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or None when missing or unreadable (a crash mid-write leaves the old one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def record_to_json(record: ProcessRecord) -> dict[str, Any]:
    """A record as JSON-ready fields."""
    return {"pid": record.pid, **record.started.to_record(), "marker": record.marker}


def record_from_json(data: Mapping[str, Any] | None) -> ProcessRecord | None:
    """A record back from its fields, or None when they are missing."""
    if not data or "pid" not in data or "started_at" not in data:
        return None
    return ProcessRecord(
        pid=int(data["pid"]), started=Start.from_record(data), marker=str(data.get("marker", ""))
    )


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages about a process that died."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])

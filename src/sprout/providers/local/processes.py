"""Process identity and clean-up: prove a pid is still the process we started, and end it with all it made.

A pid alone is not an identity: the kernel reuses pids. A process is "ours" only when its pid exists,
its start time equals the one recorded at launch, it is not a zombie, and its command line names the
instance's spec file. Ending an instance means ending its whole session (the agent is the session
leader, and the app runs in its own process group inside that session), plus any descendant seen
before the first signal, then checking with a process scan that none is left.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil

from sprout.process_start import TOLERANCE, Start


def identify(pid: int, started: Start, marker: str) -> psutil.Process | None:
    """The live process `pid` if it is the one that began at `started` with `marker` in its command line."""
    try:
        proc = psutil.Process(pid)
        if not started.matches(proc):
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if not any(marker in part for part in proc.cmdline()):
            return None
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return proc


def pid_reused(pid: int, started: Start) -> bool:
    """Whether `pid` now names a live process other than the one that began at `started`.

    Called after `identify` failed; a process with the recorded start is still ours, e.g. an agent in
    the middle of exiting, whose command line already reads empty.
    """
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and not started.matches(proc)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def session_members(sid: int, born_after: Start) -> list[psutil.Process]:
    """Live processes of session `sid` started no earlier than `born_after` (so never a reused sid's)."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) != sid:
                continue
            if born_after.offset(proc) < -TOLERANCE:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ProcessLookupError):
            continue
        members.append(proc)
    return members


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    """Every live descendant of `proc` (empty if it is gone)."""
    try:
        return proc.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


def kill_all(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """SIGKILL every process in `procs` and wait up to `timeout`; return the ones still alive."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            proc.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [proc for proc in alive if _is_alive(proc)]


def _is_alive(proc: psutil.Process) -> bool:
    """Whether `proc` runs (a zombie has already ended; only its parent's wait is missing)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False

"""Fault-injection helpers: hold the state store's write lock from another process, a small tmpfs home."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_kit import Sprout, app_process, kill_all, make_app, processes_of

__all__ = ["Sprout", "app_process", "kill_all", "make_app", "processes_of"]

T = TypeVar("T")

_HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@contextmanager
def state_locked(db: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """A second process holding `BEGIN IMMEDIATE` on `db` for `seconds` (entered once the lock is held)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


def wait_for(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.1) -> T:
    """Poll `check` until it returns something other than None/False; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            found = check()
        except Exception as exc:
            found, last = None, exc
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s (last error: {last!r})")
        time.sleep(every)


def tmpfs_allowed() -> str | None:
    """Why a tmpfs cannot be mounted here (None when it can); outside CI a test then skips, in CI it fails."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs this suite as root)"
    return None


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the block; unmounted (lazily if busy) afterwards."""
    why = tmpfs_allowed()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the disk-full tests: {why}")
        pytest.skip(why)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write zeros into a file under `path` until the file system is full; the file (delete it to free)."""
    ballast = path / "ballast"
    chunk = b"\0" * (64 * 1024)
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError:
                break
        # Whatever space is left below one chunk goes too.
        while True:
            try:
                os.write(fd, b"\0" * 512)
            except OSError:
                break
    finally:
        os.close(fd)
    return ballast

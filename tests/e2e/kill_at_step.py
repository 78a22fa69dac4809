"""Kill the daemon with SIGKILL right at the boundary into one step of the newest release.

Usage: python kill_at_step.py STATE_DB STEP DAEMON_PID TIMEOUT; prints the release id it caught.

Steps chain within one daemon tick, so polling alone would miss the short ones. Instead this takes the
database's write lock for a moment, over and over: once the persisted state is STEP, it kills the
daemon while still holding the lock, so the daemon dies before STEP wrote anything (its first write
waits on the lock). A process of its own, so that no other thread's GIL turn stretches the gaps.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time


def main() -> int:
    """Hold and release the write lock until the newest release is at the step; then kill."""
    db, step, pid, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT id, state FROM deployments ORDER BY id DESC LIMIT 1").fetchone()
        if row is not None and row[1] == step:
            os.kill(pid, signal.SIGKILL)
            while os.path.exists(f"/proc/{pid}") and _state(pid) not in ("Z", "X"):
                time.sleep(0.001)
            conn.execute("ROLLBACK")
            print(row[0], flush=True)
            return 0
        conn.execute("COMMIT")
        time.sleep(0.0003)
    print(f"no release reached {step} within {timeout:g}s", file=sys.stderr)
    return 1


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


if __name__ == "__main__":
    sys.exit(main())

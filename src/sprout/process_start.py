"""When a process started, as a record that proves its identity even after the wall clock was stepped.

A pid alone is not an identity (the kernel reuses pids), so Sprout records when each process it starts
began and later compares. psutil's `create_time()` is wall-clock: boot tick count plus the boot time the
kernel derives from the current clock, so a clock step (NTP, a VM resuming) shifts it, and the kernel's
whole-second boot time can move by one second on its own. Compared against a record, such a shift makes
a live process look like a stranger. The start in seconds since boot never changes, so that is what
identity is checked by; the wall-clock time is kept beside it for people and for ages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

#: Starts are counted in clock ticks (10 ms); two readings of one process agree far closer than this.
TOLERANCE = 0.05


@dataclass(frozen=True)
class Start:
    """When a process started: wall-clock epoch seconds, and seconds since boot (None in old records)."""

    at: float
    since_boot: float | None = None

    @classmethod
    def of(cls, proc: psutil.Process) -> Start:
        """The start of the live process `proc` (psutil.Error if it is gone)."""
        return cls(at=proc.create_time(), since_boot=since_boot(proc))

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Start:
        """The start in a JSON record's `started_at` and optional `since_boot` fields."""
        since = data.get("since_boot")
        return cls(at=float(data["started_at"]), since_boot=None if since is None else float(since))

    def to_record(self) -> dict[str, float]:
        """The JSON record fields of this start."""
        fields = {"started_at": self.at}
        if self.since_boot is not None:
            fields["since_boot"] = self.since_boot
        return fields

    def offset(self, proc: psutil.Process) -> float:
        """Seconds `proc` started after this start (negative: before); psutil.Error if it is gone."""
        if self.since_boot is not None:
            return since_boot(proc) - self.since_boot
        return proc.create_time() - self.at

    def matches(self, proc: psutil.Process) -> bool:
        """Whether `proc` started at this very moment (so it is the process recorded, not a reused pid)."""
        return abs(self.offset(proc)) <= TOLERANCE


def running(pid: int) -> bool:
    """Whether `pid` names a process that runs: not gone, and not a zombie (ended, not yet reaped, which a
    container's init may never do for the orphans it adopts)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def since_boot(proc: psutil.Process) -> float:
    """Seconds after boot at which `proc` started (psutil.Error if it is gone)."""
    if sys.platform == "linux":
        try:
            with open(f"/proc/{proc.pid}/stat", "rb") as stat:
                data = stat.read()
        except FileNotFoundError as exc:
            raise psutil.NoSuchProcess(proc.pid) from exc
        # Field 22, counted after the parenthesised command name (which may itself hold spaces or ')').
        ticks = int(data[data.rindex(b")") + 2 :].split()[19])
        return ticks / os.sysconf("SC_CLK_TCK")
    return proc.create_time() - psutil.boot_time()

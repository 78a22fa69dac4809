"""A process's recorded start proves its identity by seconds since boot, immune to wall-clock steps."""

from __future__ import annotations

import subprocess
import time

import psutil

from sprout.process_start import Start, since_boot
from sprout.providers.local.processes import pid_reused


def test_since_boot_agrees_with_psutil_and_orders_processes() -> None:
    me = psutil.Process()
    assert abs(since_boot(me) - (me.create_time() - psutil.boot_time())) < 1.01
    child = subprocess.Popen(["sleep", "5"])
    try:
        assert since_boot(psutil.Process(child.pid)) >= since_boot(me)
    finally:
        child.kill()
        child.wait()


def test_a_start_matches_its_process_whatever_the_wall_clock_says() -> None:
    me = psutil.Process()
    start = Start.of(me)
    assert start.matches(me)
    assert Start.from_record(start.to_record()) == start
    stepped = Start(at=start.at + 3600, since_boot=start.since_boot)
    assert stepped.matches(me)
    assert stepped.offset(me) == 0.0


def test_a_start_from_another_moment_does_not_match() -> None:
    me = psutil.Process()
    start = Start.of(me)
    assert start.since_boot is not None
    assert not Start(at=start.at, since_boot=start.since_boot - 1).matches(me)
    assert Start(at=start.at, since_boot=start.since_boot - 1).offset(me) == 1.0


def test_an_old_record_without_since_boot_compares_wall_clock_times() -> None:
    me = psutil.Process()
    old = Start.from_record({"started_at": me.create_time()})
    assert old == Start(at=me.create_time())
    assert old.to_record() == {"started_at": me.create_time()}
    assert old.matches(me)
    assert not Start(at=me.create_time() - 1).matches(me)


def test_a_process_that_ended_raises_no_such_process() -> None:
    child = subprocess.Popen(["true"])
    proc = psutil.Process(child.pid)
    child.wait()
    time.sleep(0.05)
    try:
        since_boot(proc)
    except psutil.NoSuchProcess:
        return
    raise AssertionError("a reaped process still had a start")


def test_a_pid_is_reused_only_when_a_process_with_another_start_holds_it() -> None:
    me = psutil.Process()
    start = Start.of(me)
    assert start.since_boot is not None
    assert not pid_reused(me.pid, start)
    assert pid_reused(me.pid, Start(at=start.at - 100, since_boot=start.since_boot - 100))
    child = subprocess.Popen(["true"])
    child.wait()
    assert not pid_reused(child.pid, start)

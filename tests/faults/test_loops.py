"""No supervised loop can die: each fails in its job and in its error path, then passes again.

The fault is real: the state store and the log store live on a small tmpfs that is filled, so every
write (the job's, and the daemon's error hook recording the failure) fails with "disk is full". Once
the space is freed every loop must pass again, report it, and the disk watch must say what happened.
"""

from __future__ import annotations

import time
from pathlib import Path

from fault_kit import fill, tmpfs, wait_for

from sprout.controlplane.certificates import CERT_INTERVAL
from sprout.controlplane.daemon import AUTOSCALE_INTERVAL, LOG_INTERVAL, RELEASE_INTERVAL, error_hook
from sprout.controlplane.disk import CHECK_INTERVAL, DiskWatch
from sprout.controlplane.housekeeping import HOUSEKEEPING_INTERVAL
from sprout.controlplane.reconcile import INTERVAL as RECONCILE_INTERVAL
from sprout.dashboard.page import render
from sprout.logs.ingest import LogIngester
from sprout.logs.record import LogRecord, format_line
from sprout.logs.store import LogStore
from sprout.loops import STALL_PERIODS, Loop
from sprout.state import StateStore

#: Every loop the daemon runs, with its period (housekeeping's is shortened: the test cannot wait 600 s).
DAEMON_LOOPS = {
    "reconcile": RECONCILE_INTERVAL,
    "releases": RELEASE_INTERVAL,
    "autoscaler": AUTOSCALE_INTERVAL,
    "housekeeping": min(HOUSEKEEPING_INTERVAL, 0.5),
    "disk": CHECK_INTERVAL,
    "certificates": CERT_INTERVAL,
}


def test_every_loop_survives_a_full_disk_in_its_job_and_its_error_path(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "home", "4m") as home:
        store = StateStore(home / "state.db")
        logs = LogStore(home / "logs.db")
        disk = DiskWatch(home, store)
        report = error_hook(store, disk)
        app_log = home / "app.log"
        ingester = LogIngester(logs, lambda: [(app_log, "instance")], LOG_INTERVAL, on_error=report)

        def write_job(name: str) -> object:
            # A real write of the state store, as each loop's pass makes one when it acts.
            return lambda: store.record_event(None, None, f"{name}.pass", f"{name} passed")

        loops = [
            Loop(name, write_job(name), period, on_error=report, backoff_max=1.0)
            for name, period in DAEMON_LOOPS.items()
            if name != "disk"
        ]
        loops += [Loop("disk", disk.check, CHECK_INTERVAL, on_error=report), ingester.loop]
        # The line is written before the disk fills: it must wait, there is no room for it in the log store.
        app_log.write_text(format_line(LogRecord(time.time(), "stdout", "i-1", "a", "e", "v1", "a", "kept")))
        ballast = fill(home)
        full_at = time.time()
        for loop in loops:
            loop.start()
        try:

            def every_loop_failed() -> bool:
                return all(loop.health().failures > 0 for loop in loops if loop.name != "disk")

            wait_for("every loop failing on the full disk", every_loop_failed, 15)
            failing = {loop.name: loop.health() for loop in loops}
            assert disk.full_since is not None
            # A loop's health names the error from its first failure on.
            assert all("disk is full" in (h.last_error or "") for n, h in failing.items() if n != "disk"), (
                failing
            )
            # Its error path (recording the failure in the full store) fails too, and says so once done.
            wait_for(
                "the reconcile loop saying its failure was not recorded",
                lambda: (
                    "not recorded"
                    in (next(lp for lp in loops if lp.name == "reconcile").health().last_error or "")
                ),
                15,
            )
        finally:
            ballast.unlink()
        freed = time.time()
        try:

            def every_loop_passed_again() -> bool:
                return all(
                    (h := loop.health()).last_pass is not None and h.last_pass > freed and not h.stalled
                    for loop in loops
                )

            wait_for("every loop passing again", every_loop_passed_again, 15)
            recovered = max(loop.health().last_pass or 0 for loop in loops) - freed
            wait_for("the disk watch saying space is back", lambda: disk.full_since is None, 10)
        finally:
            for loop in loops:
                loop.stop()
        kinds = [e.kind for e in store.list_events(limit=1000)]
        assert "disk.full" in kinds and "disk.ok" in kinds
        assert kinds.index("disk.full") < kinds.index("disk.ok")
        full = next(e for e in store.list_events(kind="disk.full"))
        assert full.data["since"] >= full_at - 1 and full.message.startswith("disk full since ")
        assert [r.msg for r in logs.query()] == ["kept"]
        print(f"every loop passing again {recovered:.2f}s after the disk was freed")
        store.close()
        logs.close()


def test_a_loop_that_stops_passing_is_reported_stalled_after_3_periods_and_on_the_dashboard() -> None:
    clock = [1000.0]
    broken = [False]

    def job() -> None:
        if broken[0]:
            raise RuntimeError("upstream gone")

    loop = Loop("reconcile", job, 0.5, clock=lambda: clock[0])
    assert loop.run_once()
    broken[0] = True
    assert not loop.run_once()
    clock[0] += STALL_PERIODS * 0.5 - 0.01
    assert not loop.health().stalled, "not yet: 3 periods have not passed"
    clock[0] += 0.02
    health = loop.health()
    assert health.stalled and health.last_error == "RuntimeError: upstream gone" and health.failures == 1
    daemon = {"pid": 1, "uptime": 1.0, "loops": [health.to_json()], "disk": {"full_since": 1000.0}}
    page = render(
        {"router": "running", "window": 5.0, "environments": []},
        {"daemon": daemon, "environments": []},
        [],
        [],
        {
            "spend": 0,
            "currency": "EUR",
            "instance_seconds": 0,
            "since": "2026-12-01T00:00:00Z",
            "projected_month": 0,
            "fixed_peak_spend": 0,
            "savings": 0,
            "rate_per_hour": 0,
            "hours_left_in_month": 100.0,
            "above_desired_spend": 0,
        },
        [],
    )
    assert '<span class="bad" title="RuntimeError: upstream gone">reconcile stalled</span>' in page
    assert "disk full since 1970-01-01 00:16:40 UTC" in page
    broken[0] = False
    assert loop.run_once() and not loop.health().stalled


def test_a_loop_failing_thousands_of_times_in_a_row_keeps_backing_off_and_trying() -> None:
    calls = [0]

    def job() -> None:
        calls[0] += 1
        if calls[0] <= 1100:
            raise OSError(28, "No space left on device")

    loop = Loop("logs", job, 0.0001, backoff_max=0.0001)
    loop.start()
    try:
        wait_for("a pass after 1100 failures", lambda: loop.health().last_pass, 30)
    finally:
        loop.stop()
    health = loop.health()
    assert health.failures == 0 and health.last_error == "OSError: [Errno 28] No space left on device"

"""The state store locked by another process past its busy timeout, while an app instance dies.

The reconcile loop's passes fail (and so does recording why) for as long as the lock is held; once it
is released the loop must pass again, replace the dead instance and keep restarting a killed router.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_kit import Sprout, app_process, kill_all, make_app, processes_of, state_locked, wait_for

from loopback import free_port

LOCK_SECONDS = 14.0
#: Acceptance bounds: the fleet full again after the lock's release; a killed router serving again.
HEAL_WITHIN = 25.0
ROUTER_BACK_WITHIN = 5.0


@pytest.fixture
def sprout(tmp_path: Path, shared_bundle_cache: Path) -> Iterator[Sprout]:
    app = make_app(tmp_path, "[scaling]\nenabled = false\n")
    instance = Sprout(home=tmp_path / "home", app_dir=app, port=free_port())
    try:
        yield instance
    finally:
        if instance.home.exists():
            instance.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(instance.home))


@pytest.mark.slow
def test_state_locked_14s_while_an_app_dies_heals_within_25s_then_a_killed_router_is_restarted(
    sprout: Sprout,
) -> None:
    sprout.up()
    before = sprout.wait_converged(60)
    victim = before["instances"][0]
    with state_locked(sprout.home / "state.db", LOCK_SECONDS) as holder:
        app_process(victim["pid"]).send_signal(signal.SIGKILL)
        holder.wait(LOCK_SECONDS + 30)
    released = time.monotonic()
    sprout.wait_converged(HEAL_WITHIN, without=victim["id"])
    healed = time.monotonic() - released

    os.kill(sprout.router()["pid"], signal.SIGKILL)
    killed = time.monotonic()

    def serving() -> bool:
        return sprout.get().status_code == 200

    wait_for("the killed router serving again", serving, ROUTER_BACK_WITHIN, every=0.05)
    router_back = time.monotonic() - killed

    def all_loops_passing() -> list[dict[str, Any]] | None:
        loops: list[dict[str, Any]] = sprout.status()["daemon"]["loops"]
        return loops if not any(loop["stalled"] for loop in loops) else None

    loops = wait_for("every loop passing", all_loops_passing, 10)
    assert {loop["name"] for loop in loops} == {
        "reconcile",
        "logs",
        "releases",
        "autoscaler",
        "housekeeping",
        "disk",
        "certificates",
    }
    shown = sprout.run("daemon", "status").stdout
    assert "reconcile" in shown and "STALLED" not in shown
    daemon_log = (sprout.home / "logs" / "daemon.log").read_text()
    assert "Exception in thread" not in daemon_log
    assert "reconcile failed; retrying" in daemon_log, "the lock did fail passes (the fault was real)"
    print(f"fleet full {healed:.1f}s after the lock's release; killed router serving in {router_back:.2f}s")

"""A release ended while its release command runs (by `sprout rollback` or `sprout down`) stops that command:
it never runs on beside the next release's, which would run two migrations at once. A daemon stopped
meanwhile stops promptly, taking the command with it, and the next daemon runs the command again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from e2e_kit import Sprout, kill_all, processes_of, running, slow_when_marked, wait_until

from loopback import free_port
from sprout.state import StateStore

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("ender", ["rollback", "down", "daemon stop"])
def test_a_release_ended_mid_command_stops_its_command(tmp_path: Path, ender: str) -> None:
    # The release command of a version whose marker says "slow" sleeps (a long migration); a unique
    # duration names it.
    pause = f"120.{os.getpid()}{len(ender)}"
    app = slow_when_marked(tmp_path, "release", pause)
    sprout = Sprout(home=tmp_path / "home", app_dir=app, port=free_port())
    migration: list[psutil.Process] = []
    try:
        sprout.up()
        (app / "marker.txt").write_text("slow")
        deploy = subprocess.Popen(
            [sys.executable, "-m", "sprout", "deploy", str(app)],
            env=sprout.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        migration = wait_until(lambda: running(["sleep", pause]), 90, "the release command to run")
        ended = sprout.run(*ender.split(), *([] if ender == "daemon stop" else [str(app)]), timeout=120)
        # The daemon stops the command within a loop pass of the release's end.
        wait_until(
            lambda: not running(["sleep", pause]), 15, f"the release command to stop after `sprout {ender}`"
        )
        deploy.wait(timeout=60)
        store = StateStore(sprout.home / "state.db")
        try:
            phases = [e.message for e in store.list_events("hello", "production", kind="release.phase")]
        finally:
            store.close()
        assert any("killed after" in m for m in phases), (phases, ended.stdout)
        if ender == "daemon stop":
            # The release resumes with the next daemon, which runs its command again; a rollback ends it.
            sprout.run("daemon", "start")
            migration = wait_until(lambda: running(["sleep", pause]), 60, "the release command to run again")
            sprout.run("rollback", str(app), timeout=120)
            wait_until(lambda: not running(["sleep", pause]), 15, "the command to stop after the rollback")
        if ender == "rollback":
            # The next release runs its own command alone, and goes through.
            (app / "marker.txt").write_text("fast")
            again = sprout.run("deploy", str(app), check=False, timeout=180)
            assert again.returncode == 0, again.stdout + again.stderr
            assert sprout.environment()["version"] == "v3"
    finally:
        kill_all(migration)
        kill_all(processes_of(sprout.home))

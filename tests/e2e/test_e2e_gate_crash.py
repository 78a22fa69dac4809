"""A daemon killed in the middle of a release's test gate: the gate's command dies with it, its scratch copy
is removed by the next one-off, and the release lock it held refuses no later release."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from e2e_kit import Sprout, kill_all, processes_of, running, slow_when_marked, wait_until

from loopback import free_port
from sprout.deploy.oneoff import SCRATCH_PREFIX
from sprout.state import StateStore

pytestmark = pytest.mark.slow

#: Runs the command given as arguments as a child subreaper (PR_SET_CHILD_SUBREAPER), prints its exit
#: status, then waits for stdin to close without reaping the orphans it adopted.
_NO_REAPER = (
    "import ctypes, subprocess, sys; ctypes.CDLL(None).prctl(36, 1, 0, 0, 0); "
    "up = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(up.returncode, repr(up.stdout + up.stderr), flush=True); sys.stdin.read()"
)


def test_a_daemon_killed_in_the_test_gate_leaves_no_command_running_and_no_lock_refusing_releases(
    tmp_path: Path,
) -> None:
    # The gate of a version whose marker says "slow" sleeps (a long test suite); a unique duration names it.
    pause = f"90.{os.getpid()}"
    app = slow_when_marked(tmp_path, "test", pause)
    sprout = Sprout(home=tmp_path / "home", app_dir=app, port=free_port())
    gate: list[psutil.Process] = []
    # `up` runs under a parent that adopts the daemon and never reaps it, as a container's init may not:
    # the killed daemon then stays a zombie, which must count as gone.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _NO_REAPER,
            sys.executable,
            "-m",
            "sprout",
            "up",
            str(app),
            "--port",
            str(sprout.port),
        ],
        env=sprout.env(),
        cwd=app,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        code, _, output = parent.stdout.readline().partition(" ")
        assert code == "0", f"sprout up exited {code}: {output}"
        (app / "marker.txt").write_text("slow")
        deploy = subprocess.Popen(
            [sys.executable, "-m", "sprout", "deploy", str(app)],
            env=sprout.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        gate = wait_until(lambda: running(["sleep", pause]), 90, "the test gate's command to run")
        daemon = int(sprout.daemon()["pid"])
        # The gate runs in a scratch copy named after the daemon (another test's one-off may remove it
        # once the daemon is gone, so it is looked for now).
        assert list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{daemon}-*")), "no scratch copy?"
        os.kill(daemon, signal.SIGKILL)
        _, err = deploy.communicate(timeout=60)
        assert deploy.returncode != 0, err
        # The gate's command went with the daemon: it would otherwise run on beside the next release.
        wait_until(lambda: not running(["sleep", pause]), 10, "the gate's command to die with the daemon")

        # The test's own premise: the killed daemon stays a zombie.
        assert psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE
        sprout.run("daemon", "start")
        (app / "marker.txt").write_text("fast")
        again = sprout.run("deploy", str(app), check=False, timeout=180)
        assert again.returncode == 0, again.stdout + again.stderr
        assert sprout.environment()["version"] == "v3"
        # The next one-off (this release's gate) removed the killed one's scratch copy.
        assert not list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{daemon}-*"))
        store = StateStore(sprout.home / "state.db")
        try:
            freed = [e.message for e in store.list_events("hello", "production", kind="release.lock_freed")]
        finally:
            store.close()
        assert len(freed) == 1 and f"(pid {daemon}, now gone)" in freed[0], freed
    finally:
        kill_all(gate)
        kill_all(processes_of(sprout.home))
        parent.kill()
        parent.communicate()

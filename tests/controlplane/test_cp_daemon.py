"""The daemon's process lifecycle with real processes: start, one per home, status, graceful stop, router kept."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from loopback import free_port
from sprout.controlplane.lifecycle import running_daemon, start_daemon, stop_daemon
from sprout.controlplane.router_process import RouterProcess
from sprout.paths import Home
from sprout.state import StateStore

pytestmark = pytest.mark.slow


@pytest.fixture
def home(daemon_home: Home) -> Home:
    return daemon_home


def test_daemon_starts_once_serves_its_api_and_stops_leaving_the_router(home: Home) -> None:
    port = free_port()
    info = start_daemon(home, router_port=port)
    assert start_daemon(home).record == info.record  # already running: the same daemon
    token = (home.run / "api.token").read_text().strip()
    response = httpx.get(
        info.api_url + "/v1/status", headers={"Authorization": f"Bearer {token}"}, trust_env=False
    )
    doc = response.json()
    assert doc["daemon"]["pid"] == info.record.pid
    assert doc["router"] == {
        "running": True,
        "pid": doc["router"]["pid"],
        "port": port,
        "https_port": None,
        "url": f"http://127.0.0.1:{port}/",
    }
    assert doc["environments"] == []

    # A second daemon for the same home refuses to run (the first holds run/daemon.lock).
    second = subprocess.run(
        [sys.executable, "-m", "sprout.controlplane", "--home", str(home.root)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 3
    assert "another daemon already serves" in second.stderr

    router = RouterProcess(home).current()
    assert router is not None and router.port == port
    assert stop_daemon(home)
    assert running_daemon(home) is None
    assert not (home.run / "daemon.json").exists()
    assert router.record.alive()  # traffic does not depend on the daemon

    # A new daemon adopts the running router instead of starting another one.
    start_daemon(home)
    adopted = RouterProcess(home).current()
    assert adopted is not None and adopted.record == router.record
    kinds = [event.kind for event in StateStore(home.state_db).list_events()]
    assert kinds.count("router.start") == 1 and kinds.count("router.adopt") == 1


def test_shutdown_with_no_environment_left_stops_router_and_daemon(home: Home) -> None:
    info = start_daemon(home, router_port=free_port())
    token = (home.run / "api.token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    response = httpx.post(info.api_url + "/v1/shutdown", json={"router": True}, headers=auth, trust_env=False)
    assert response.json() == {"stopping": True, "router_stopped": True}
    deadline = time.monotonic() + 15
    while running_daemon(home) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_daemon(home) is None
    assert RouterProcess(home).current() is None

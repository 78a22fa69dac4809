"""Router death and hangs: the supervisor keeps the listening socket, so a killed or stopped worker costs
only the requests it was serving; new connections wait in the backlog (issue 13, acceptance 2).

The router is started as the local provider starts it (`RouterProcess.ensure`, no daemon), except in the
last test, which runs `sprout up` and kills the worker with the daemon up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from router_fault_kit import Backend, PacedLoad, listen_backlog, spawn_backend, wait_for, worker_of

from loopback import free_port
from sprout.controlplane.router_process import RouterHandle, RouterProcess
from sprout.paths import Home
from sprout.router.options import BACKLOG
from sprout.router.supervisor import HANG_TIMEOUT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_kit import CANARY, Sprout, kill_all, make_app, processes_of

HOST = "shop.localhost"
RATE, SECONDS = 150.0, 12.0


@dataclass
class Front:
    """A router started as the local provider starts it, serving two backends under HOST."""

    home: Home
    routers: RouterProcess
    handle: RouterHandle

    @property
    def supervisor(self) -> int:
        return self.handle.record.pid

    def log(self) -> str:
        return (self.home.logs / "router.log").read_text()


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    home = Home(tmp_path / "home").ensure()
    backends: list[Backend] = []
    routers = RouterProcess(home)
    try:
        backends = [spawn_backend(tmp_path, ident) for ident in ("a", "b")]
        handle = routers.ensure(free_port())
        targets = [
            {"id": f"t-{b.port}", "address": f"127.0.0.1:{b.port}", "zone": "ab"[i], "healthy": True}
            for i, b in enumerate(backends)
        ]
        group = {"name": "blue", "weight": 100, "version": "v1", "targets": targets}
        routers.admin(handle).put_table(
            {"routes": [{"name": "shop", "hosts": [HOST], "default": False, "groups": [group]}]}
        )
        yield Front(home, routers, handle)
        # `down` stops the router: the supervisor and its worker, nothing left behind.
        assert routers.stop()
        assert processes_of(home.root) == []
    finally:
        routers.stop()
        kill_all(processes_of(home.root))
        for backend in backends:
            backend.stop()


def test_the_backlog_asked_for_is_in_force_for_every_worker(front: Front) -> None:
    assert listen_backlog(front.handle.port) == BACKLOG
    first = worker_of(front.supervisor)
    first.kill()
    worker_of(front.supervisor, other_than=first.pid)
    wait_for(lambda: front.routers.admin(front.handle).ping(), time.monotonic() + 15, "a new worker")
    assert listen_backlog(front.handle.port) == BACKLOG


def test_a_backend_writing_head_and_body_apart_is_not_held_by_a_delayed_ack(front: Front) -> None:
    # Few requests in flight means few lost when a worker dies: uvicorn writes head and body apart, and
    # without a quick ACK from the router its Nagle held the body 40 ms (p50 43.7 ms measured before).
    with PacedLoad(front.handle.port, HOST, rate=50.0, seconds=1.0) as load:
        pass
    assert load.ok() == 50
    assert load.latency(0.5) < 0.030


@pytest.mark.slow
def test_kill_9_of_the_worker_without_daemon_loses_at_most_3_requests(front: Front) -> None:
    worker = worker_of(front.supervisor)
    admin = front.routers.admin(front.handle)
    with PacedLoad(front.handle.port, HOST, RATE, SECONDS) as load:
        load.at(3.0)
        worker.kill()
        killed = time.monotonic()
        replacement = worker_of(front.supervisor, other_than=worker.pid)
        wait_for(admin.ping, killed + 15, "the new worker's admin API")
        serving_in = time.monotonic() - killed
    failed, refused = load.failed(), load.refused()
    print(
        f"\nworker kill -9, no daemon: {len(load.outcomes)} requests at {RATE:.0f}/s, {load.ok()} ok, "
        f"{len(failed)} failed, {len(refused)} refused; new worker serving {serving_in:.2f}s after the kill; "
        f"latency p50 {load.latency(0.5) * 1000:.0f} ms, p99 {load.latency(0.99) * 1000:.0f} ms"
    )
    assert refused == []
    assert len(failed) <= 3, failed
    assert len(load.outcomes) == int(RATE * SECONDS)
    assert replacement.pid != worker.pid
    assert front.routers.current() == front.handle  # the same router process: no restart needed
    assert f"worker pid {worker.pid} was killed by signal 9" in front.log()


@pytest.mark.slow
def test_a_stopped_worker_is_replaced_and_traffic_flows_within_5s(front: Front) -> None:
    worker = worker_of(front.supervisor)
    with PacedLoad(front.handle.port, HOST, RATE, 14.0) as load:
        load.at(2.0)
        worker.suspend()
        stopped = time.monotonic()
        wait_for(lambda: load.answered_after(stopped), stopped + 5.0, "traffic within 5 s of SIGSTOP")
        flowing_in = (load.answered_after(stopped) or 0.0) - stopped
        replacement = worker_of(front.supervisor, other_than=worker.pid)
        # The stopped worker was killed: continuing it 10 s later finds nothing to resume.
        time.sleep(max(0.0, stopped + 10.0 - time.monotonic()))
        with pytest.raises(psutil.NoSuchProcess):
            worker.resume()
    failed, refused = load.failed(), load.refused()
    print(
        f"\nworker SIGSTOP: replaced by pid {replacement.pid}; first answer {flowing_in:.2f}s after the stop; "
        f"{len(load.outcomes)} requests, {len(failed)} failed, {len(refused)} refused"
    )
    assert refused == []
    assert len(failed) <= 3, failed
    assert f"worker pid {worker.pid} answered no probe for {HANG_TIMEOUT:.1f}s (hung)" in front.log()


def test_a_whole_router_stopped_together_keeps_its_worker_when_continued(front: Front) -> None:
    # SIGSTOP of supervisor and worker together (a paused machine): the worker's silence is not its own,
    # so the supervisor, continued, probes it afresh instead of killing it for the time both were stopped.
    supervisor = psutil.Process(front.supervisor)
    worker = worker_of(front.supervisor)
    supervisor.suspend()
    worker.suspend()
    time.sleep(HANG_TIMEOUT + 2.0)
    worker.resume()
    supervisor.resume()
    admin = front.routers.admin(front.handle)
    wait_for(admin.ping, time.monotonic() + 5, "the worker answering again")
    time.sleep(HANG_TIMEOUT + 1.0)
    assert [child.pid for child in supervisor.children()] == [worker.pid]


def test_the_supervisor_is_small_no_asyncio_no_proxy_no_cli() -> None:
    probe = (
        "import sys, sprout.router.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('asyncio', 'uvloop', 'httpx', 'typer')"
        " or m.startswith(('sprout.cli', 'sprout.router.proxy', 'sprout.router.server'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_crash_looping_worker_is_restarted_with_a_growing_delay(front: Front) -> None:
    pid = 0
    for _ in range(3):
        worker = worker_of(front.supervisor, other_than=pid)
        pid = worker.pid
        worker.kill()
    wait_for(lambda: front.routers.admin(front.handle).ping(), time.monotonic() + 20, "a worker again")
    log = front.log()
    assert "starting a new one in 0.25s (crash loop)" in log
    assert "starting a new one in 0.50s (crash loop)" in log


def test_the_supervisor_survives_running_out_of_file_descriptors(front: Front) -> None:
    supervisor = psutil.Process(front.supervisor)
    worker = worker_of(front.supervisor)
    soft, hard = supervisor.rlimit(psutil.RLIMIT_NOFILE)
    try:
        supervisor.rlimit(psutil.RLIMIT_NOFILE, (supervisor.num_fds(), hard))
        # It cannot probe: no verdict, the serving worker is left alone beyond the hang timeout.
        wait_for(lambda: "cannot probe worker" in front.log(), time.monotonic() + 10, "a failed probe")
        time.sleep(HANG_TIMEOUT + 1.0)
        assert worker.is_running() and worker_of(front.supervisor).pid == worker.pid
        # It cannot start a worker either: it says so and tries again; connections wait in the backlog.
        worker.kill()
        wait_for(lambda: "cannot start a worker" in front.log(), time.monotonic() + 10, "a failed start")
        with PacedLoad(front.handle.port, HOST, rate=10.0, seconds=1.0) as load:
            load.at(1.0)
            supervisor.rlimit(psutil.RLIMIT_NOFILE, (soft, hard))
    finally:
        supervisor.rlimit(psutil.RLIMIT_NOFILE, (soft, hard))
    assert load.ok() == 10, load.snapshot()
    assert worker_of(front.supervisor).pid != worker.pid


def test_a_worker_refused_its_files_stops_the_router_with_its_error(tmp_path: Path) -> None:
    state = tmp_path / "table.json"
    state.write_text("{not json")
    token = tmp_path / "router.token"
    token.write_text("t\n")
    cmd = [
        sys.executable, "-m", "sprout.router", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        "--token-file", str(token), "--state", str(state),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"error: {state}: state file is not JSON" in result.stderr
    assert "before serving (see its error above); stopping" in result.stderr


@pytest.fixture
def sprout_up(tmp_path: Path, shared_bundle_cache: Path) -> Iterator[Sprout]:
    app = make_app(tmp_path, "[scaling]\nenabled = false\n")
    instance = Sprout(
        home=tmp_path / "home", app_dir=app, port=free_port(), extra_env={"SPROUT_E2E_CANARY": CANARY}
    )
    try:
        yield instance
    finally:
        if instance.home.exists():
            instance.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(instance.home))


@pytest.mark.slow
def test_kill_9_of_the_worker_with_the_daemon_up_loses_at_most_3_requests(sprout_up: Sprout) -> None:
    sprout = sprout_up
    sprout.up()
    sprout.wait_converged(30)
    router_pid = sprout.router()["pid"]
    worker = worker_of(router_pid)
    with PacedLoad(sprout.port, "hello.localhost", RATE, SECONDS) as load:
        load.at(3.0)
        os.kill(worker.pid, signal.SIGKILL)
    failed, refused = load.failed(), load.refused()
    print(
        f"\nworker kill -9, daemon up: {len(load.outcomes)} requests, {load.ok()} ok, "
        f"{len(failed)} failed, {len(refused)} refused"
    )
    assert refused == []
    assert len(failed) <= 3, failed
    # The daemon left the supervisor to it: same router process, no restart of its own.
    assert sprout.router()["pid"] == router_pid
    down = sprout.run("down", str(sprout.app_dir))
    assert "router and daemon stopped" in down.stdout
    assert processes_of(sprout.home) == []

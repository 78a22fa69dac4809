"""LocalProvider with real agents: launch, observe, adopt from a new object, stop with nothing left."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest
from instance_kit import get, make_spec, pid_alive, session_pids, wait_for, wait_http

from sprout.errors import ConflictError
from sprout.paths import Home
from sprout.process_start import since_boot
from sprout.providers.local import LocalProvider, place


def _tree(pid: int) -> list[int]:
    """The pid and every descendant's pid."""
    proc = psutil.Process(pid)
    return [pid, *(child.pid for child in proc.children(recursive=True))]


def test_launch_serve_observe_and_stop_leaves_nothing(
    home: Home, probe_sha: str, provider: LocalProvider
) -> None:
    canary = "canary-5e1d0c77aa"
    spec = make_spec(home, probe_sha, secret_names=("API_KEY",))
    launched = provider.launch(spec, {"API_KEY": canary})
    assert (launched.instance_id, launched.state, launched.port, launched.zone) == (
        spec.instance_id,
        "running",
        spec.port,
        "a",
    )
    seen = json.loads(wait_http(spec.port, "/"))
    assert seen["env"]["API_KEY"] == canary
    folder = home.instance_dir(spec.instance_id)
    assert canary not in (folder / "spec.json").read_text()
    record = json.loads((folder / "pid.json").read_text())
    assert (record["pid"], record["started_at"]) == (launched.pid, launched.started_at)
    assert record["since_boot"] == since_boot(psutil.Process(launched.pid))
    assert provider.observe() == [launched]

    pids = _tree(launched.pid)
    assert seen["pid"] in pids
    provider.stop(spec.instance_id, grace=5.0)
    assert not any(pid_alive(pid) for pid in pids)
    assert session_pids(launched.pid) == []
    assert provider.observe() == []
    assert not (folder / "pid.json").exists()
    provider.stop(spec.instance_id, grace=5.0)


def test_a_new_provider_object_adopts_agents_started_by_another_process(
    home: Home, probe_sha: str, provider: LocalProvider
) -> None:
    specs = [make_spec(home, probe_sha, zone=zone) for zone in place(["a", "b"], {}, 2)]
    # Launch from a separate process that then exits, exactly like a control plane that died.
    launcher = (
        "import json, sys; from sprout.paths import Home; from sprout.providers.base import InstanceSpec; "
        "from sprout.providers.local import LocalProvider; p = LocalProvider(Home.from_env()); "
        "[p.launch(InstanceSpec.from_json(s), {}) for s in json.loads(sys.stdin.read())]"
    )
    subprocess.run(
        [sys.executable, "-c", launcher],
        input=json.dumps([s.to_json() for s in specs]),
        text=True,
        check=True,
    )
    for spec in specs:
        wait_http(spec.port, "/")

    adopted = provider.observe()
    assert [(o.instance_id, o.zone, o.port, o.state) for o in adopted] == sorted(
        (s.instance_id, s.zone, s.port, "running") for s in specs
    )
    assert LocalProvider(home).observe() == adopted
    pids = [pid for o in adopted for pid in _tree(o.pid)]
    for observed in adopted:
        provider.stop(observed.instance_id, grace=5.0)
    assert not any(pid_alive(pid) for pid in pids)
    assert provider.observe() == []


def test_an_instance_whose_app_crashed_is_reported_exited(
    home: Home, probe_sha: str, provider: LocalProvider
) -> None:
    spec = make_spec(home, probe_sha)
    launched = provider.launch(spec, {})
    wait_http(spec.port, "/")
    with pytest.raises(OSError):
        get(spec.port, "/exit/1")
    exited = wait_for(lambda: [o for o in provider.observe() if o.state == "exited"])
    assert [o.instance_id for o in exited] == [spec.instance_id]
    assert [o.state for o in LocalProvider(home).observe()] == ["exited"]
    provider.stop(spec.instance_id, grace=1.0)
    assert provider.observe() == []
    assert not pid_alive(launched.pid)


def test_stop_ends_an_app_whose_agent_was_killed(home: Home, probe_sha: str, provider: LocalProvider) -> None:
    spec = make_spec(home, probe_sha)
    launched = provider.launch(spec, {})
    app_pid = json.loads(wait_http(spec.port, "/"))["pid"]
    psutil.Process(launched.pid).kill()
    wait_for(lambda: [o for o in provider.observe() if o.state == "exited"])
    assert pid_alive(app_pid)

    LocalProvider(home).stop(spec.instance_id, grace=1.0)
    # SIGKILLed and orphaned, the app leaves the process table when init reaps it: allow a moment.
    wait_for(lambda: not pid_alive(app_pid), timeout=5.0)
    assert session_pids(launched.pid) == []


def test_a_wall_clock_step_does_not_make_a_running_agent_a_stranger(
    home: Home, probe_sha: str, provider: LocalProvider
) -> None:
    spec = make_spec(home, probe_sha)
    launched = provider.launch(spec, {})
    app_pid = json.loads(wait_http(spec.port, "/"))["pid"]
    # What the wall-clock start of a process reads after the clock was stepped back by a minute.
    pid_path = home.instance_dir(spec.instance_id) / "pid.json"
    record = json.loads(pid_path.read_text())
    pid_path.write_text(json.dumps(record | {"started_at": record["started_at"] + 60}))

    adopter = LocalProvider(home)
    assert [o.state for o in adopter.observe()] == ["running"]
    adopter.stop(spec.instance_id, grace=5.0)
    assert not pid_alive(launched.pid)
    assert not pid_alive(app_pid)
    assert adopter.observe() == []


def test_stop_never_touches_a_process_that_reused_the_pid(
    home: Home, probe_sha: str, provider: LocalProvider
) -> None:
    spec = make_spec(home, probe_sha)
    provider.launch(spec, {})
    wait_http(spec.port, "/")
    provider.stop(spec.instance_id, grace=5.0)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        # The record claims an agent that started long ago under the pid the stranger now holds.
        folder = home.instance_dir(spec.instance_id)
        started = psutil.Process(stranger.pid).create_time() - 100
        (folder / "pid.json").write_text(json.dumps({"pid": stranger.pid, "started_at": started}))
        assert [o.state for o in provider.observe()] == ["exited"]
        provider.stop(spec.instance_id, grace=1.0)
        assert pid_alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


def test_launching_a_running_instance_again_is_a_conflict(
    home: Home, probe_sha: str, provider: LocalProvider
) -> None:
    # An app that needs no port: a port lost to a concurrent test would end it, and the agent with it.
    spec = make_spec(home, probe_sha, web="sleep 60")
    provider.launch(spec, {})
    with pytest.raises(ConflictError, match=f"instance {spec.instance_id} is already running"):
        provider.launch(spec, {})
    provider.stop(spec.instance_id, grace=5.0)


def test_stop_of_an_unknown_instance_is_a_no_op(home: Home, provider: LocalProvider) -> None:
    start = time.monotonic()
    provider.stop("i-0000000000", grace=5.0)
    assert time.monotonic() - start < 5.0

"""The agent end to end with real processes: bootstrap from a folder store, serve, log, stop, exit."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from instance_kit import (
    HELLO,
    get,
    make_spec,
    pid_alive,
    push,
    read_log,
    session_pids,
    start_agent,
    wait_for,
    wait_http,
    write_probe_app,
    write_spec,
)

from sprout.agent.spec import AgentSpec
from sprout.paths import Home
from sprout.providers.base import InstanceSpec


def _msgs(records: list[dict[str, object]], stream: str) -> list[str]:
    return [str(r["msg"]) for r in records if r["stream"] == stream]


@pytest.mark.slow
def test_hello_example_boots_serves_and_stops_gracefully(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(HELLO, home.artifacts, tmp_path / "scratch")
    spec = make_spec(
        home,
        sha,
        app="hello",
        version="v7",
        zone="b",
        web="python -m hello",
        install="python -m compileall -q hello",
    )
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)

    body = wait_http(spec.port, "/", proc=agent).decode()
    assert body == f"Hello: hello v7 on {spec.instance_id} in zone b\n"
    health = json.loads(wait_http(spec.port, "/healthz", proc=agent))
    assert health == {
        "status": "ok",
        "app": "hello",
        "instance": spec.instance_id,
        "zone": "b",
        "version": "v7",
    }

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=spec.grace + 5) == 0
    records = read_log(Path(spec.log_file))
    assert {key for r in records for key in r} == {
        "ts",
        "stream",
        "instance",
        "app",
        "env",
        "version",
        "zone",
        "msg",
    }
    assert all(
        r["instance"] == spec.instance_id and r["version"] == "v7" and r["zone"] == "b" for r in records
    )
    assert f"hello listening on http://127.0.0.1:{spec.port}" in _msgs(records, "stdout")
    assert "GET / 200" in _msgs(records, "stdout")
    system = _msgs(records, "system")
    assert "install: python -m compileall -q hello" in system
    assert "received SIGTERM: stopping the app (grace 5s)" in system
    assert system[-2:] == ["web exited with code 0", "agent exiting with status 0"]
    assert (home.cache / sha / ".ready").is_file()
    assert (home.cache / sha / "app" / "hello" / "__pycache__").is_dir()


def test_app_sees_the_contract_environment_and_nothing_else(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    spec = make_spec(
        home,
        sha,
        version="v3",
        zone="b",
        env_vars={
            "DATABASE_URL": "sqlite:///db.sqlite",
            "SESSION_STORE_URL": "memcached://127.0.0.1:1",
            "MODE": "x",
        },
        secret_names=("API_KEY",),
    )
    spec_path = write_spec(home, spec)
    canary = "canary-7f3b2a91e4"
    agent = start_agent(spec_path, {"API_KEY": canary, "UNRELATED_SETTING": "leak"})
    agents.append(agent)

    seen = json.loads(wait_http(spec.port, "/", proc=agent))
    env = seen["env"]
    venv = home.cache / sha / "venv"
    assert {
        k: env[k] for k in ("PORT", "HOST", "SPROUT_APP", "SPROUT_ENV", "SPROUT_VERSION", "SPROUT_INSTANCE")
    } == {
        "PORT": str(spec.port),
        "HOST": "127.0.0.1",
        "SPROUT_APP": "probe",
        "SPROUT_ENV": "test",
        "SPROUT_VERSION": "v3",
        "SPROUT_INSTANCE": spec.instance_id,
    }
    assert env["SPROUT_ZONE"] == "b"
    assert env["DATABASE_URL"] == "sqlite:///db.sqlite"
    assert env["SESSION_STORE_URL"] == "memcached://127.0.0.1:1"
    assert env["MODE"] == "x"
    assert env["API_KEY"] == canary
    assert "UNRELATED_SETTING" not in env
    assert "SPROUT_HOME" not in env
    assert env["VIRTUAL_ENV"] == str(venv)
    assert env["PATH"].split(":")[0] == str(venv / "bin")
    assert seen["python"] == str(venv / "bin" / "python")
    assert seen["cwd"] == str(home.cache / sha / "app")
    assert canary not in spec_path.read_text()

    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=10)
    log_text = Path(spec.log_file).read_text()
    assert canary not in log_text
    assert "a line on stderr" in _msgs(read_log(Path(spec.log_file)), "stderr")


def test_sigterm_is_forwarded_and_the_app_group_is_gone_after(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    child_file = tmp_path / "child.pid"
    spec = make_spec(home, sha, env_vars={"PROBE_CHILD": str(child_file)})
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    app_pid = json.loads(wait_http(spec.port, "/", proc=agent))["pid"]
    child_pid = int(child_file.read_text())
    assert pid_alive(child_pid)

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0
    assert "got SIGTERM, bye" in _msgs(read_log(Path(spec.log_file)), "stdout")
    wait_for(lambda: not pid_alive(app_pid) and not pid_alive(child_pid), timeout=5)
    assert session_pids(agent.pid) == []


def test_an_app_ignoring_sigterm_is_killed_after_grace(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    spec = make_spec(home, sha, grace=1.0, env_vars={"PROBE_IGNORE_TERM": "1"})
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    app_pid = json.loads(wait_http(spec.port, "/", proc=agent))["pid"]

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 128 + signal.SIGKILL
    system = _msgs(read_log(Path(spec.log_file)), "system")
    assert "ignoring SIGTERM" in _msgs(read_log(Path(spec.log_file)), "stdout")
    assert "grace of 1s is over: killing the app (SIGKILL)" in system
    assert "web exited with signal SIGKILL" in system
    wait_for(lambda: not pid_alive(app_pid), timeout=5)


def test_the_agent_exits_with_its_app(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    spec = make_spec(home, sha)
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    wait_http(spec.port, "/", proc=agent)

    with pytest.raises(OSError):
        get(spec.port, "/exit/3")
    assert agent.wait(timeout=10) == 3
    assert _msgs(read_log(Path(spec.log_file)), "system")[-2:] == [
        "web exited with code 3",
        "agent exiting with status 3",
    ]


def test_sprout_agent_command_runs_an_instance(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    spec = make_spec(home, sha)
    agent = subprocess.Popen(
        [sys.executable, "-m", "sprout", "agent", "--spec", str(write_spec(home, spec))],
        start_new_session=True,
    )
    agents.append(agent)
    wait_http(spec.port, "/", proc=agent)
    with pytest.raises(OSError):
        get(spec.port, "/exit/4")
    assert agent.wait(timeout=10) == 4


def test_the_agent_entry_point_stays_lean() -> None:
    # Everything imported before the app starts delays every instance start.
    probe = (
        "import sys, sprout.agent.main; "
        "heavy = {'typer', 'rich', 'pydantic', 'boto3', 'httpx', 'starlette', 'click', 'argparse', 'pathlib', "
        "'dataclasses', 'typing', 'sqlite3', 'psutil', 'sprout.logs', 'sprout.bundle', 'sprout.providers'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_agent_reads_every_field_of_an_instance_spec() -> None:
    assert set(AgentSpec.__slots__) == {field.name for field in dataclasses.fields(InstanceSpec)}

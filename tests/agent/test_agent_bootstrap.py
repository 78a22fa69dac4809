"""Bootstrap: install once per bundle hash (even under concurrency), redo a crashed one, fail loudly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from instance_kit import (
    make_spec,
    push,
    read_log,
    session_pids,
    start_agent,
    wait_for,
    wait_http,
    write_probe_app,
    write_spec,
)

from sprout.agent.main import BOOTSTRAP_FAILED, STOPPED_EARLY
from sprout.bundle import FolderStore
from sprout.paths import Home


def _system(spec_log: str) -> list[str]:
    return [str(r["msg"]) for r in read_log(Path(spec_log)) if r["stream"] == "system"]


@pytest.mark.slow
def test_install_runs_once_per_bundle_even_when_instances_start_together(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    count = tmp_path / "installs.txt"
    # The install is slow on purpose, so the second agent surely arrives while the first holds the lock.
    app = write_probe_app(tmp_path / "probe", install='sleep 1; echo installed >> "$INSTALL_COUNT"')
    sha = push(app, home.artifacts, tmp_path / "scratch")
    specs = [
        make_spec(
            home,
            sha,
            install='sleep 1; echo installed >> "$INSTALL_COUNT"',
            env_vars={"INSTALL_COUNT": str(count)},
        )
        for _ in range(2)
    ]
    for spec in specs:
        agents.append(start_agent(write_spec(home, spec)))
    for spec, agent in zip(specs, agents, strict=True):
        wait_http(spec.port, "/", proc=agent)
    assert count.read_text() == "installed\n"
    waited = [
        spec
        for spec in specs
        if any("another instance is bootstrapping it" in m for m in _system(spec.log_file))
    ]
    assert len(waited) == 1

    third = make_spec(
        home, sha, install="echo installed >> $INSTALL_COUNT", env_vars={"INSTALL_COUNT": str(count)}
    )
    agents.append(start_agent(write_spec(home, third)))
    wait_http(third.port, "/", proc=agents[-1])
    assert count.read_text() == "installed\n"
    assert "bundle ready from cache" in " ".join(_system(third.log_file))
    assert (home.cache / sha / "venv" / "bin" / "pip").exists()


def test_an_incomplete_cache_folder_is_bootstrapped_again(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    crashed = home.cache / sha
    (crashed / "app").mkdir(parents=True)
    (crashed / "app" / "half-written.py").write_text("# an install that died here")
    spec = make_spec(home, sha)
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    wait_http(spec.port, "/", proc=agent)
    assert not (crashed / "app" / "half-written.py").exists()
    assert (crashed / ".ready").is_file()
    assert f"bundle {sha[:12]}: removing an incomplete earlier bootstrap" in _system(spec.log_file)
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=10)


def test_a_bundle_missing_from_the_store_fails_the_bootstrap(
    home: Home, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = "ab" * 32
    spec = make_spec(home, sha)
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    assert agent.wait(timeout=30) == BOOTSTRAP_FAILED
    assert _system(spec.log_file)[-1] == (
        f"bootstrap failed: bundle {sha} is not in the artifact store {home.artifacts.as_uri()}; "
        "push the version again"
    )
    assert not (home.cache / sha / ".ready").exists()


def test_a_tampered_bundle_fails_the_bootstrap(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    stored = home.artifacts / "bundles" / f"{sha}.tar.gz"
    data = bytearray(stored.read_bytes())
    data[-20] ^= 0xFF
    stored.write_bytes(bytes(data))
    spec = make_spec(home, sha)
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    assert agent.wait(timeout=30) == BOOTSTRAP_FAILED
    last = _system(spec.log_file)[-1]
    assert last.startswith(
        f"bootstrap failed: bundle {sha}.tar.gz from {FolderStore(home.artifacts).url}: sha256 mismatch"
    )
    assert not (home.cache / sha / "app").exists()


@pytest.mark.slow
def test_a_failing_install_fails_the_bootstrap_and_leaves_no_marker(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    spec = make_spec(home, sha, install="echo building; echo missing wheel >&2; exit 7")
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    assert agent.wait(timeout=60) == BOOTSTRAP_FAILED
    records = read_log(Path(spec.log_file))
    assert any(r["stream"] == "stdout" and r["msg"] == "building" for r in records)
    assert any(r["stream"] == "stderr" and r["msg"] == "missing wheel" for r in records)
    assert _system(spec.log_file)[-1] == (
        "bootstrap failed: install command 'echo building; echo missing wheel >&2; exit 7' exited with code 7; "
        "see the lines above in this instance's log, fix the command or the app's requirements, "
        "and push a new version"
    )
    assert not (home.cache / sha / ".ready").exists()


def test_a_missing_secret_fails_the_bootstrap(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    spec = make_spec(home, sha, secret_names=("STRIPE_KEY",))
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    assert agent.wait(timeout=30) == BOOTSTRAP_FAILED
    assert _system(spec.log_file)[-1] == (
        "bootstrap failed: secrets STRIPE_KEY are not in the agent's environment; the control plane "
        "resolves [secrets] before launching, so check their sources and launch again"
    )


def test_an_unreadable_spec_is_a_user_error(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "sprout.agent", "--spec", str(spec_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {spec_path}: not a readable instance spec (")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"port": "80"}, "port must be a TCP port number, not '80'"),
        ({"port": 70000}, "port must be a TCP port number, not 70000"),
        ({"web": None}, "web must be a string, not None; the provider writes it"),
        ({"grace": -1}, "grace must be a number of seconds, not -1"),
        ({"env_vars": {"A": 1}}, "env_vars must map names to strings"),
        ({"secret_names": "API_KEY"}, "secret_names must be a list of names"),
        ({"install_inputs": "requirements.txt"}, "install_inputs must be a list of file paths or null"),
    ],
)
def test_a_malformed_spec_is_refused_with_the_field_named(
    home: Home, tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    data = {**make_spec(home, "ab" * 32).to_json(), **change}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(data))
    result = subprocess.run(
        [sys.executable, "-m", "sprout.agent", "--spec", str(spec_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {spec_path}: {problem}\n"


@pytest.mark.slow
def test_a_stop_during_install_ends_it_and_leaves_the_bootstrap_to_redo(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    sha = push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")
    spec = make_spec(home, sha, install="sleep 300")
    agent = start_agent(write_spec(home, spec))
    agents.append(agent)
    wait_for(lambda: "install: sleep 300" in _system(spec.log_file), timeout=60)
    wait_for(lambda: len(session_pids(agent.pid)) > 1)

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == STOPPED_EARLY
    assert _system(spec.log_file)[-1] == "received SIGTERM: stopped during bootstrap, the app never started"
    assert session_pids(agent.pid) == []
    assert not (home.cache / sha / ".ready").exists()

"""200 instance launches across 4 environments at once: no two instances ever get the same port.

Four processes (one per environment, as four API calls to a daemon would) each launch 50 instances of one
home through the control plane's launch path: the instance launcher leases the port, records the instance
and asks the local provider to start it. The agent started is a stand-in that, like a real agent, takes a
while (fetching and installing the bundle) before its app listens on the port, then serves it with
memcached: a real agent with its app is tens of MB and seconds of CPU, and 200 of them at once do not fit
a test. An instance handed a port another one holds fails to listen and is missing at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from sprout.paths import Home
from sprout.ports import PortBook, instance_owner
from sprout.providers.local import LocalProvider
from sprout.spec import parse_manifest
from sprout.state import StateStore

ENVIRONMENTS, EACH = 4, 50
#: Instances stopped through the provider at the end (the rest crash).
STOPPED = 10

#: `python -m sprout.agent --spec FILE` as the provider runs it: $4 is the spec file.
AGENT = textwrap.dedent(
    """\
    #!/bin/bash
    port=$(sed -n 's/^  "port": \\([0-9]*\\),$/\\1/p' "$4")
    sleep 2
    memcached -l 127.0.0.1 -p "$port" -U 0 -m 2 -t 1 -u "$(id -un)" &
    app=$!
    trap 'kill $app; wait $app; exit 0' TERM
    wait $app
    """
)

#: One environment's launches, all at once with the other environments' (started by the go file).
LAUNCHER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from sprout.controlplane.instances import InstanceLauncher, SecretBook
    from sprout.controlplane.resources import Resources
    from sprout.paths import Home
    from sprout.providers.local import LocalProvider
    from sprout.state import StateStore

    home, env_name, agent, go, count = Home(Path(sys.argv[1])), *sys.argv[2:5], int(sys.argv[5])
    store = StateStore(home.state_db)
    provider = LocalProvider(home, python=agent)
    launcher = InstanceLauncher(home, store, provider, Resources(home, store), SecretBook({}))
    env = store.get_environment("ports", env_name)
    while not Path(go).exists():
        time.sleep(0.005)
    launched = [launcher.launch(env, "v1", "a", "blue") for _ in range(count)]
    print(json.dumps({i.id: i.port for i in launched}), flush=True)
    """
)


def listens(port: int) -> bool:
    """True when memcached answers on the port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"version\r\n")
            return conn.recv(64).startswith(b"VERSION")
    except OSError:
        return False


@pytest.mark.slow
def test_200_launches_in_4_environments_at_once_get_200_ports(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    store = StateStore(home.state_db)
    manifest = parse_manifest({"app": {"name": "ports", "web": "serve"}, "instances": {"zones": ["a"]}})
    store.add_version("ports", "0" * 64, 1, manifest)
    envs = [f"e{n}" for n in range(1, ENVIRONMENTS + 1)]
    for name in envs:
        store.upsert_environment("ports", name, manifest, tmp_path)
    agent, go = tmp_path / "agent.sh", tmp_path / "go"
    agent.write_text(AGENT)
    agent.chmod(0o700)
    launchers = [
        subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(home.root), name, str(agent), str(go), str(EACH)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "SPROUT_HOME": str(home.root)},
        )
        for name in envs
    ]
    provider, book = LocalProvider(home), PortBook.of(home)
    try:
        go.touch()
        ports: dict[str, int] = {}
        for launcher in launchers:
            out, _ = launcher.communicate(timeout=120)
            assert launcher.returncode == 0
            ports.update(json.loads(out))
        assert len(ports) == ENVIRONMENTS * EACH
        assert len(set(ports.values())) == len(ports), "two instances were given one port"
        instances = store.list_instances(app="ports")
        assert {i.id: i.port for i in instances} == ports
        # Each port is leased to its instance, held by the instance's agent.
        owners = {instance_owner(i.id): (i.port, i.pid) for i in instances}
        leases = {lease.owner: (port, lease.pid) for port, lease in book.leases().items()}
        assert {owner: leases.get(owner) for owner in owners} == owners
        # Every instance listens on its own port: none was handed one another already held.
        missing, deadline = set(ports.values()), time.monotonic() + 60
        while missing and time.monotonic() < deadline:
            time.sleep(0.2)
            missing = {port for port in missing if not listens(port)}
        assert missing == set()
    finally:
        for launcher in launchers:
            launcher.kill()
            launcher.wait()
        instances = store.list_instances(app="ports")
        # A few go through the provider's stop, which ends their lease; the others' agents are killed
        # (a crash), which leaves their leases to be reclaimed.
        stopped, crashed = instances[:STOPPED], instances[STOPPED:]
        for instance in stopped:
            provider.stop(instance.id, 2.0)
        for instance in crashed:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(instance.pid, signal.SIGKILL)
        psutil.wait_procs([proc for i in crashed if (proc := process(i.pid))], timeout=30)
    ours = {instance_owner(i.id) for i in instances}
    assert {lease.owner for lease in book.leases().values()} & ours == {instance_owner(i.id) for i in crashed}
    assert set(book.reclaim()) >= {i.port for i in crashed}
    assert {lease.owner for lease in book.leases().values()} & ours == set()


def process(pid: int | None) -> psutil.Process | None:
    """The process `pid`, if it still exists."""
    try:
        return psutil.Process(pid) if pid else None
    except psutil.NoSuchProcess:
        return None

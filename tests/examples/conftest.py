"""Fixtures for the reference workloads end to end: real app processes (uvicorn), real memcached nodes,
a scratch MariaDB database, and a real router process in front; every process is stopped by pid."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from example_procs import EXAMPLES, PY, AppProcess, RouterProcess, stop

from loopback import PORTS, free_port
from sprout.router.client import RouterAdmin
from sprout.services import database, memcached
from sprout.services.memcached import MemcachedNode


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A scratch MariaDB database, created by the database resource helper and dropped afterwards."""
    url = f"mysql://root@127.0.0.1:3306/sprout_e2e_{uuid.uuid4().hex[:12]}"
    database.ensure_database(url)
    yield url
    database.drop_database(url)


@pytest.fixture
def memcached_nodes(tmp_path: Path) -> Iterator[list[MemcachedNode]]:
    """One managed memcached node per zone, a and b."""
    nodes = memcached.start_nodes(["a", "b"], memory_mb=32, log_dir=tmp_path, ports=PORTS)
    yield nodes
    memcached.stop_nodes(nodes)


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """Start instances of an example app; each answers /healthz before it is returned."""
    started: list[AppProcess] = []

    def start(app: str, env: dict[str, str], zone: str, instance: str) -> AppProcess:
        port = free_port()
        env = env | {"PORT": str(port), "HOST": "127.0.0.1", "SPROUT_ZONE": zone, "SPROUT_INSTANCE": instance}
        cmd = [PY, "-m", "uvicorn", f"{app}.app:app", "--host", "127.0.0.1", "--port", str(port)]
        cmd.append("--no-access-log")
        with open(tmp_path / f"{instance}.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=EXAMPLES / app, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(AppProcess(proc, port, instance, zone))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / f"{instance}.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return started[-1]
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"{instance} did not answer /healthz in 30s")

    yield start
    for app_process in started:
        stop(app_process.proc)


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[Callable[[], RouterProcess]]:
    """Start the Sprout router process on a free port with a test admin token."""
    started: list[RouterProcess] = []

    def start() -> RouterProcess:
        (tmp_path / "router.token").write_text("e2e-token\n")
        (tmp_path / "router.token").chmod(0o600)
        cmd = [
            PY, "-m", "sprout.router", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--token-file", str(tmp_path / "router.token"), "--state", str(tmp_path / "router-table.json"),
            "--access-log", str(tmp_path / "access.log"),
        ]  # fmt: skip
        env = {**os.environ, "SPROUT_HOME": str(tmp_path / "home")}
        with open(tmp_path / "router.err", "a") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("router listening on"):
            stop(proc)
            raise AssertionError(f"router did not start: {line!r} {(tmp_path / 'router.err').read_text()}")
        words = line.split()
        router = RouterProcess(
            proc, int(words[3].rsplit(":", 1)[1]), RouterAdmin(f"http://{words[6]}", "e2e-token")
        )
        started.append(router)
        return router

    yield start
    for router in started:
        stop(router.proc)
        router.admin.close()

"""Fixtures for router tests: real backend processes and real router processes on loopback ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import sprout.accessfiles as access
from loopback import free_port
from sprout.router.client import RouterAdmin, RouterControl
from sprout.router.config import RouterConfig
from sprout.router.haproxy.admin import HaproxyAdmin
from sprout.router.haproxy.config import Layout, find_haproxy, remove_socket_folder, write_config

HERE = Path(__file__).parent
PY = sys.executable


def access_rows(access_log: Path) -> list[dict[str, Any]]:
    """Every request the router logged, in time order: the notable JSON lines and the access file's lines."""
    rows = []
    for text in access_log.read_text().splitlines():
        row = json.loads(text)
        rows.append((datetime.fromisoformat(row["time"]).timestamp(), row))
    current = access.folder_of(access_log) / access.CURRENT
    for text in current.read_text().splitlines() if current.exists() else []:
        line = access.parse_line(text)
        assert line is not None, text
        host, slash, path = line.host_path.partition("/")
        keys = ("request_id", "method", "status", "bytes", "duration", "target", "version", "zone", "retries")
        row = {"time": line.ts, "host": host, "path": slash + path, "route": line.route}
        rows.append((line.ts, {**row, **{key: getattr(line, key) for key in keys}}))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def _read_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before printing {prefix!r}")
    raise RuntimeError(f"process {proc.pid} did not print {prefix!r} in {timeout}s")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@dataclass
class Backend:
    """A running test backend."""

    proc: subprocess.Popen[str]
    port: int
    version: str
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def requests_seen(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def kill(self) -> None:
        _stop(self.proc)


@dataclass
class Router:
    """A running router process and an admin client for it."""

    proc: subprocess.Popen[str]
    port: int
    admin_port: int
    token: str
    state: Path
    access_log: Path
    admin: RouterControl
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_rows(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The access log's rows once it holds at least `count` (the router flushes it every second)."""

        def rows() -> list[dict[str, Any]]:
            try:
                return access_rows(self.access_log)
            except (OSError, ValueError, AssertionError):
                return []  # not written yet, or a flush under way

        wait_for(lambda: len(rows()) >= count, timeout, f"{count} access log rows")
        return rows()

    def kill(self) -> None:
        _stop(self.proc)
        self.admin.close()


def spawn_backend(folder: Path, version: str = "v1", unhealthy: bool = False, ident: str = "") -> Backend:
    """Start a backend process; the caller kills it."""
    log = folder / f"backend-{version}-{time.monotonic_ns()}.log"
    cmd = [PY, str(HERE / "router_backend.py"), "--version", version, "--log", str(log)]
    if unhealthy:
        cmd.append("--unhealthy")
    if ident:
        cmd += ["--id", ident]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        port = int(_read_line(proc, "PORT").split()[1])
    except Exception:
        _stop(proc)
        raise
    return Backend(proc, port, version, log)


def spawn_router(folder: Path, *extra: str, state: Path | None = None, port: int = 0) -> Router:
    """Start a router process with a test token and state/access-log files in `folder`."""
    token_file = folder / "router.token"
    token_file.write_text("test-token\n")
    token_file.chmod(0o600)
    state = state or folder / "router-table.json"
    access_log = folder / "access.log"
    cmd = [
        PY, "-m", "sprout.router",
        "--listen", f"127.0.0.1:{port}", "--admin", "127.0.0.1:0",
        "--token-file", str(token_file), "--state", str(state), "--access-log", str(access_log),
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "SPROUT_HOME": str(folder / "home")}
    with open(folder / "router.err", "a") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    try:
        line = _read_line(proc, "router listening on")
    except Exception:
        _stop(proc)
        raise
    words = line.split()
    listen, admin_at = words[3], words[6]
    return Router(
        proc,
        int(listen.rsplit(":", 1)[1]),
        int(admin_at.rsplit(":", 1)[1]),
        "test-token",
        state,
        access_log,
        RouterAdmin(f"http://{admin_at}", "test-token"),
        list(extra),
    )


def spawn_haproxy(folder: Path) -> Router:
    """Start the HAProxy engine as the control plane does (generated config, runtime API socket)."""
    layout = Layout(folder / "haproxy")
    port = free_port()
    config = write_config(layout, f"127.0.0.1:{port}", RouterConfig())
    access_log = folder / "access.log"
    with open(access_log, "ab") as out, open(folder / "haproxy.err", "ab") as err:
        proc = subprocess.Popen([find_haproxy(), "-db", "-f", str(config)], stdout=out, stderr=err, text=True)
    admin = HaproxyAdmin(layout)
    try:
        wait_for(admin.ping, 10, "the HAProxy runtime API")
    except Exception:
        _stop(proc)
        raise
    return Router(proc, port, 0, "", layout.table, access_log, admin)


@pytest.fixture(params=["sprout", "haproxy"])
def engine(request: pytest.FixtureRequest) -> str:
    """Each data plane in turn, for the suites about behaviour both engines must show."""
    return str(request.param)


@pytest.fixture
def start_engine(
    tmp_path: Path, engine: str, start_router: Callable[..., Router]
) -> Iterator[Callable[[], Router]]:
    """Starts the router of the test's engine (the embedded router, or HAProxy through its runtime API)."""
    started: list[Router] = []

    def start() -> Router:
        if engine == "sprout":
            return start_router()
        router = spawn_haproxy(tmp_path)
        started.append(router)
        return router

    yield start
    for router in started:
        _stop(router.proc)
    remove_socket_folder(Layout(tmp_path / "haproxy"))


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def start(version: str = "v1", unhealthy: bool = False, ident: str = "") -> Backend:
        backend = spawn_backend(tmp_path, version, unhealthy, ident)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        _stop(backend.proc)


@pytest.fixture
def start_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Router]]:
    monkeypatch.setenv("SPROUT_HOME", str(tmp_path / "home"))
    started: list[Router] = []

    def start(*extra: str, state: Path | None = None, port: int = 0) -> Router:
        router = spawn_router(tmp_path, *extra, state=state, port=port)
        started.append(router)
        return router

    yield start
    for router in started:
        _stop(router.proc)
        router.admin.close()


def table(*routes: dict[str, Any]) -> dict[str, Any]:
    return {"routes": list(routes)}


def route(
    name: str,
    groups: list[dict[str, Any]],
    hosts: list[str] | None = None,
    default: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    health = {
        "path": "/healthz",
        "interval": 0.2,
        "timeout": 1.0,
        "healthy_threshold": 2,
        "unhealthy_threshold": 2,
    }
    health.update(extra.pop("health", {}))
    return {"name": name, "hosts": hosts or [f"{name}.localhost"], "default": default, "health": health,
            "groups": groups, **extra}  # fmt: skip


def group(name: str, backends: list[Backend], weight: int = 100, healthy: bool = False) -> dict[str, Any]:
    version = backends[0].version if backends else ""
    return {
        "name": name,
        "weight": weight,
        "version": version,
        "targets": [
            {"id": f"{name}-{b.port}", "address": b.address, "zone": "ab"[i % 2], "version": b.version,
             "healthy": healthy}
            for i, b in enumerate(backends)
        ],
    }  # fmt: skip


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_healthy(router: Router, target_ids: list[str], timeout: float = 10.0) -> None:
    wait_for(
        lambda: all(router.admin.target(t)["state"] == "healthy" for t in target_ids), timeout, "healthy"
    )


def get(client: httpx.Client, router: Router, path: str, host: str, **kw: Any) -> httpx.Response:
    return client.get(f"{router.url}{path}", headers={"Host": host, **kw.pop("headers", {})}, **kw)

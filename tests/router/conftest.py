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
from pathlib import Path
from typing import Any

import httpx
import pytest

from sprout.router.client import RouterAdmin

HERE = Path(__file__).parent
PY = sys.executable


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
    admin: RouterAdmin
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_rows(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The access log's rows once it holds at least `count` (the router flushes it every second)."""

        def rows() -> list[dict[str, Any]]:
            text = self.access_log.read_text() if self.access_log.exists() else ""
            # Whole lines only: a flush may be under way.
            return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

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

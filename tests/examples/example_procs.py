"""Processes for the reference workloads end to end: example app instances (uvicorn) and the router."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sprout.router.client import RouterAdmin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PY = sys.executable
SESSION_SECRET = "e2e-shared-session-secret"


@dataclass
class AppProcess:
    """One instance of an example app, served by uvicorn on its own port."""

    proc: subprocess.Popen[bytes]
    port: int
    instance: str
    zone: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class RouterProcess:
    """The Sprout router (data plane) and an admin client for it."""

    proc: subprocess.Popen[str]
    port: int
    admin: RouterAdmin

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def app_env(app: str, database_url: str, session_store_url: str, **extra: str) -> dict[str, str]:
    """The environment Sprout gives an instance of `app` (the app contract)."""
    return {
        **os.environ,
        "PYTHONPATH": str(EXAMPLES / app),
        "SPROUT_APP": app,
        "SPROUT_ENV": "e2e",
        "SPROUT_VERSION": "v1",
        "DATABASE_URL": database_url,
        "SESSION_STORE_URL": session_store_url,
        "SESSION_SECRET": SESSION_SECRET,
        **extra,
    }


def release(app: str, env: dict[str, str]) -> str:
    """Run the app's release command (its migrations) as Sprout would; return its output."""
    result = subprocess.run(
        [PY, "-m", f"{app}.migrate"], cwd=EXAMPLES / app, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def route_to(router: RouterProcess, name: str, host: str, instances: list[AppProcess]) -> None:
    """Point `host` at the instances (one group, health-checked on /healthz) and wait until all are healthy."""
    targets = [
        {"id": i.instance, "address": i.address, "zone": i.zone, "version": "v1", "healthy": False}
        for i in instances
    ]
    # Lenient like a cloud load balancer's defaults: a busy instance on a small test box is still healthy.
    health = {
        "path": "/healthz",
        "interval": 0.5,
        "timeout": 5.0,
        "healthy_threshold": 1,
        "unhealthy_threshold": 3,
    }
    router.admin.put_table(
        {
            "routes": [
                {
                    "name": name,
                    "hosts": [host],
                    "health": health,
                    "groups": [{"name": "blue", "targets": targets}],
                }
            ]
        }
    )
    seen: set[str] = set()
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=router.url, headers={"host": host}, timeout=5) as client:
        while seen != {i.instance for i in instances}:
            assert time.monotonic() < deadline, f"router reached only {seen}"
            response = client.get("/healthz")
            if response.status_code == 200:
                seen.add(response.headers["x-sprout-instance"])
            else:
                time.sleep(0.1)

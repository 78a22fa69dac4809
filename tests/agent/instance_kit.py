"""Shared helpers for the agent and local-provider tests: a probe app, bundles, specs, HTTP waits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from loopback import free_port
from sprout.bundle import FolderStore, pack
from sprout.paths import Home
from sprout.providers.base import InstanceSpec

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"

#: A stdlib web app for tests: echoes its environment, can crash, ignore SIGTERM, or spawn a child.
PROBE_APP = r"""
import json, os, signal, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.environ.get("PROBE_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, lambda s, f: print("ignoring SIGTERM", flush=True))
else:
    def _term(s, f):
        print("got SIGTERM, bye", flush=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, _term)

if os.environ.get("PROBE_CHILD"):
    child = subprocess.Popen(["sleep", "300"])
    with open(os.environ["PROBE_CHILD"], "w") as f:
        f.write(str(child.pid))

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/exit/"):
            os._exit(int(self.path.rsplit("/", 1)[1]))
        body = json.dumps({"env": dict(os.environ), "pid": os.getpid(), "cwd": os.getcwd(),
                           "python": sys.executable}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

print("probe on", os.environ["PORT"], flush=True)
print("a line on stderr", file=sys.stderr, flush=True)
ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
"""


def write_probe_app(folder: Path, install: str = 'echo installed >> "$INSTALL_COUNT"') -> Path:
    """Write the probe app into `folder` with a sprout.toml; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe.py").write_text(PROBE_APP)
    (folder / "sprout.toml").write_text(
        f'[app]\nname = "probe"\nweb = "python probe.py"\ninstall = {install!r}\n'
    )
    return folder


def push(app_dir: Path, store_root: Path, scratch: Path) -> str:
    """Pack `app_dir` and put it in the folder store at `store_root`; return its sha256."""
    bundle = pack(app_dir, scratch)
    return FolderStore(store_root).put(bundle.path)


def make_spec(home: Home, sha256: str, **overrides: Any) -> InstanceSpec:
    """An instance spec for bundle `sha256` in `home`'s folder store, on a free port."""
    instance_id = overrides.pop("instance_id", f"i-{os.urandom(5).hex()}")
    values: dict[str, Any] = {
        "instance_id": instance_id,
        "app": "probe",
        "env": "test",
        "version": "v1",
        "bundle_sha256": sha256,
        "store_url": home.artifacts.as_uri(),
        "zone": "a",
        "host": "127.0.0.1",
        "port": free_port(),
        "web": "python probe.py",
        "install": None,
        "health_path": "/",
        "log_file": str(home.instance_dir(instance_id) / "app.log"),
        "cache_dir": str(home.cache),
        "grace": 5.0,
    }
    values.update(overrides)
    return InstanceSpec(**values)


def write_spec(home: Home, spec: InstanceSpec) -> Path:
    """Write the spec file the way the provider does; return its path."""
    folder = home.instance_dir(spec.instance_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.json"
    path.write_text(json.dumps(spec.to_json()))
    return path


def start_agent(spec_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `python -m sprout.agent --spec` in its own session, as the provider does."""
    return subprocess.Popen(
        [sys.executable, "-m", "sprout.agent", "--spec", str(spec_path)],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def get(port: int, path: str = "/", timeout: float = 2.0) -> tuple[int, bytes]:
    """GET http://127.0.0.1:port/path: (status, body)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return response.status, response.read()


def wait_http(
    port: int, path: str = "/", timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> bytes:
    """Poll until GET answers 200; fail early if `proc` exits. Returns the body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"agent exited with {proc.returncode} before serving")
        try:
            status, body = get(port, path, timeout=1.0)
            if status == 200:
                return body
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"nothing answered on port {port} within {timeout}s")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON records of an instance log file."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def session_pids(sid: int) -> list[int]:
    """Pids of live, non-zombie processes in session `sid`."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (test clean-up, by recorded pid)."""
    for pid in session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live, non-zombie process."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

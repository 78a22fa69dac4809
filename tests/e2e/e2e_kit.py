"""End-to-end helpers: run the real `sprout` CLI against a private SPROUT_HOME, load the router, find processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"
CLI_TIMEOUT = 120.0
T = TypeVar("T")
#: A secret value planted in every e2e app; it must never show up where Sprout writes or answers.
CANARY = "canary-7f3d9b1e-do-not-leak"


@dataclass
class Sprout:
    """One private installation: its home, its app folder, its router port, and the `sprout` CLI."""

    home: Path
    app_dir: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The data plane `up` asks for (`--engine`); None leaves the default.
    engine: str | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "SPROUT_HOME": str(self.home), **self.extra_env}

    def run(
        self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "sprout", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.app_dir,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"sprout {' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def up(self) -> subprocess.CompletedProcess[str]:
        engine = ("--engine", self.engine) if self.engine else ()
        return self.run("up", str(self.app_dir), "--port", str(self.port), *engine)

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.run("status", "--json").stdout))

    def environment(self, app: str = "hello", env: str = "production") -> dict[str, Any]:
        return next(e for e in self.status()["environments"] if e["app"] == app and e["env"] == env)

    def daemon(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "run" / "daemon.json").read_text()))

    def router(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "run" / "router.json").read_text()))

    def token(self) -> str:
        return (self.home / "run" / "api.token").read_text().strip()

    def get(self, path: str = "/", host: str = "hello.localhost") -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}", headers={"Host": host}, timeout=5, trust_env=False
        )

    def wait_converged(self, timeout: float, healthy: int = 2, without: str | None = None) -> dict[str, Any]:
        """Wait until `healthy` instances run healthy (none of them `without`) and nothing else is live."""
        deadline = time.monotonic() + timeout
        found: dict[str, Any] = {}
        while time.monotonic() < deadline:
            found = self.environment()
            live = [i for i in found["instances"] if i["state"] in ("launching", "running")]
            gone = without is None or all(i["id"] != without for i in found["instances"])
            if gone and found["converged"] and found["healthy"] == healthy and len(live) == healthy:
                return found
            time.sleep(0.2)
        raise AssertionError(f"not converged to {healthy} healthy within {timeout}s: {found}")


@contextmanager
def private_sprout(app: Path, home: Path) -> Iterator[Sprout]:
    """A private Sprout (home, the app folder, a free router port); `down` and a kill of any leftover
    process of the home at the end, whatever happened."""
    from loopback import free_port

    sprout = Sprout(home=home, app_dir=app, port=free_port())
    try:
        yield sprout
    finally:
        if home.exists():
            sprout.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(home))


def make_app(tmp_path: Path, manifest_extra: str = "") -> Path:
    """A copy of examples/hello (with extra manifest text appended) in its own folder."""
    app = tmp_path / "app"
    shutil.copytree(HELLO, app, ignore=shutil.ignore_patterns("__pycache__"))
    if manifest_extra:
        with open(app / "sprout.toml", "a", encoding="utf-8") as out:
            out.write("\n" + manifest_extra)
    return app


def slow_when_marked(tmp_path: Path, command: str, pause: str) -> Path:
    """The hello app whose `command` (`test`, `release`) runs `sleep <pause>` while the app folder's
    marker.txt says "slow" (a long test suite, a long migration; a unique pause names the process)."""
    app = make_app(tmp_path)
    edit_manifest(
        app,
        'web = "python -m hello"',
        f'web = "python -m hello"\n{command} = "if grep -q slow marker.txt; then sleep {pause}; fi"',
    )
    return app


def edit_manifest(app: Path, old: str, new: str) -> None:
    """Replace one piece of an app's sprout.toml."""
    manifest = app / "sprout.toml"
    text = manifest.read_text()
    assert old in text, f"{old!r} not in {manifest}"
    manifest.write_text(text.replace(old, new))


def processes_of(home: Path) -> list[psutil.Process]:
    """Every process that belongs to this home: its path in the command line or its working folder under it."""
    mark = str(home)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.pid == os.getpid():
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        cwd = proc.info["cwd"] or ""
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if mark in cmdline or cwd.startswith(mark):
            found.append(proc)
    return found


def alive(pids: Iterable[int]) -> list[int]:
    """The pids still running (zombies count as gone)."""
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            continue
    return left


def kill_all(procs: Iterable[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            continue


def app_process(agent_pid: int) -> psutil.Process:
    """The app process an agent supervises (its only child running the web command)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = psutil.Process(agent_pid).children(recursive=True)
        if children:
            return children[-1]
        time.sleep(0.05)
    raise AssertionError(f"agent {agent_pid} has no app process")


class Load:
    """Steady GETs through the router from a thread, counting failures; bounded in time and count."""

    def __init__(self, port: int, host: str = "hello.localhost", max_seconds: float = 60.0) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.host = host
        self.max_seconds = max_seconds
        self.ok = 0
        self.failed: list[str] = []
        self.instances: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=5, trust_env=False, headers={"Host": self.host}) as client:
            while not self._stop.is_set() and time.monotonic() < deadline and self.ok < 200_000:
                try:
                    response = client.get(self.url)
                    if response.status_code == 200:
                        self.ok += 1
                        words = response.text.split()
                        if " on " in response.text:
                            self.instances.add(words[words.index("on") + 1])
                    else:
                        self.failed.append(f"HTTP {response.status_code}: {response.text[:100]}")
                except httpx.HTTPError as exc:
                    self.failed.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.01)


def running(cmdline: list[str]) -> list[psutil.Process]:
    """The live (not zombie) processes whose command line is exactly `cmdline`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["cmdline"] == cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """`check()` once it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result

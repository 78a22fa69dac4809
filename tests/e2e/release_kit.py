"""Release e2e helpers: the relapp test app, a GET+POST load that records each answer's version, a step watcher."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from e2e_kit import Sprout

from sprout.state import StateStore
from sprout.state.models import Deployment

RELAPP = Path(__file__).resolve().parent / "apps" / "relapp"
HOST = "relapp.localhost"


def make_relapp(tmp_path: Path) -> Path:
    """A private copy of the release test app."""
    app = tmp_path / "app"
    shutil.copytree(RELAPP, app, ignore=shutil.ignore_patterns("__pycache__"))
    return app


def set_manifest(app: Path, old: str, new: str) -> None:
    """Replace one piece of the app's sprout.toml."""
    manifest = app / "sprout.toml"
    text = manifest.read_text()
    assert old in text, f"{old!r} not in {manifest}"
    manifest.write_text(text.replace(old, new))


@dataclass(frozen=True)
class Hit:
    """One answered (or failed) request: wall-clock start and end, status, the version header."""

    start: float
    end: float
    method: str
    status: int | None
    version: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class VersionLoad:
    """Steady GET / and POST /echo through the router from two threads; every answer recorded.

    Bounded in time (`max_seconds`) and count; `failed` are non-200 answers and transport errors.
    """

    def __init__(self, port: int, max_seconds: float = 90.0, pause: float = 0.004) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.max_seconds = max_seconds
        self.pause = pause
        self.hits: list[Hit] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(m,), daemon=True) for m in ("GET", "POST")]

    def __enter__(self) -> VersionLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    @property
    def failed(self) -> list[Hit]:
        return [h for h in list(self.hits) if not h.ok]

    def versions(self, since: float = 0.0) -> set[str | None]:
        """Versions that answered requests started at or after `since` (wall clock)."""
        return {h.version for h in list(self.hits) if h.start >= since}

    def wait_all(self, version: str, seconds: float = 1.0, timeout: float = 30.0) -> float:
        """Wait until every request for `seconds` is answered by `version`; when that run began."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = time.time()
            recent = [h for h in list(self.hits) if h.start >= now - seconds]
            if len(recent) > 10 and all(h.version == version for h in recent):
                return converged_at(self.hits, version, 0.0) or now - seconds
            time.sleep(0.1)
        raise AssertionError(
            f"traffic not all on {version} within {timeout}s: {self.versions(time.time() - 1)}"
        )

    def _run(self, method: str) -> None:
        deadline = time.monotonic() + self.max_seconds
        count = 0
        with httpx.Client(timeout=5, trust_env=False, headers={"Host": HOST}) as client:
            while not self._stop.is_set() and time.monotonic() < deadline and count < 100_000:
                count += 1
                start = time.time()
                try:
                    if method == "GET":
                        response = client.get(self.url + "/")
                    else:
                        response = client.post(self.url + "/echo", content=f"ping {count}")
                    hit = Hit(
                        start,
                        time.time(),
                        method,
                        response.status_code,
                        response.headers.get("x-sprout-version"),
                    )
                except httpx.HTTPError as exc:
                    hit = Hit(start, time.time(), method, None, None, f"{type(exc).__name__}: {exc}")
                self.hits.append(hit)
                time.sleep(self.pause)


def converged_at(hits: list[Hit], version: str, since: float) -> float | None:
    """The start of the first request after which every request (started after `since`) got `version`."""
    later = sorted((h for h in hits if h.start >= since), key=lambda h: h.start)
    last_other = max((i for i, h in enumerate(later) if h.version != version), default=-1)
    if last_other + 1 >= len(later):
        return None
    return later[last_other + 1].start


class StepWatcher:
    """Reads the environment's releases from the state store: the newest, its steps' times."""

    def __init__(self, home: Path, app: str = "relapp", env: str = "production") -> None:
        self.store = StateStore(home / "state.db")
        self.app, self.env = app, env

    def latest(self) -> Deployment | None:
        found = self.store.list_deployments(self.app, self.env)
        return found[-1] if found else None

    def wait_done(self, deployment_id: int, timeout: float = 60.0) -> Deployment:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.store.get_deployment(deployment_id)
            if found.state == "done":
                return found
            time.sleep(0.1)
        raise AssertionError(
            f"release {deployment_id} not done within {timeout}s: {self.store.get_deployment(deployment_id)}"
        )

    def step_times(self, deployment_id: int) -> dict[str, float]:
        """When the release entered each step (from its `release.step` events, wall clock)."""
        events = self.store.list_events(self.app, self.env, limit=1000, kind="release.step")
        entered: dict[str, float] = {}
        for event in events:
            if event.data.get("deployment") != deployment_id or " → " not in event.message:
                continue
            target = event.message.split(" → ", 1)[1].split(":", 1)[0].strip()
            entered.setdefault(target, event.time)
        return entered

    def close(self) -> None:
        self.store.close()


def cli(sprout: Sprout, *args: str) -> subprocess.Popen[str]:
    """Start a `sprout` command in the background (its output captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "sprout", *args],
        env=sprout.env(),
        cwd=sprout.app_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expected_processes(sprout: Sprout, status: dict[str, object]) -> set[int]:
    """The pids `sprout status --json` accounts for: daemon, router (its supervisor and worker), each
    instance's agent and its app."""
    router = int(status["router"]["pid"])  # type: ignore[index]
    pids = {int(status["daemon"]["pid"]), router}  # type: ignore[index]
    with contextlib.suppress(psutil.NoSuchProcess):
        pids.update(p.pid for p in psutil.Process(router).children(recursive=True))
    for env in status["environments"]:  # type: ignore[attr-defined]
        for instance in env["instances"]:
            if instance["pid"]:
                pids.add(int(instance["pid"]))
                try:
                    pids.update(p.pid for p in psutil.Process(int(instance["pid"])).children(recursive=True))
                except psutil.NoSuchProcess:
                    continue
    return pids

"""The local provider as a world for the shared release tests: a real daemon, router and relapp instances
on loopback, releases started through the daemon's API and carried out by its release engine over
`ControlPlaneFleet`, with a steady GET + POST load through the router the whole time.

A crash is a real SIGKILL of the daemon at the boundary into a step (kill_at_step.py's
triggers freeze its next write, so it dies with the step persisted and nothing of it done); a
`sprout daemon start` then resumes the release.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_kit import Sprout, kill_all, processes_of
from release_kit import VersionLoad, expected_processes, make_relapp, set_manifest

from loopback import free_port
from sprout.controlplane.router_process import RouterProcess
from sprout.controlplane.routing import route_name
from sprout.deploy.engine import DONE, RollbackResult
from sprout.errors import UserError
from sprout.paths import Home
from sprout.state import StateStore
from sprout.state.models import Deployment

from . import kill_at_step

APP, ENV = "relapp", "production"
#: Seconds a release may take from start to done (launches, health checks, a canary interval or two).
RELEASE_TIMEOUT = 90.0
#: Seconds the fleet may take to settle after a release (old instances drained and stopped).
SETTLE_TIMEOUT = 30.0


class LocalWorld:
    """relapp v1 up with 2 instances on a private home; new versions pushed with the real CLI."""

    provider = "local"
    app, env = APP, ENV

    def __init__(self, tmp_path: Path) -> None:
        app_dir = make_relapp(tmp_path)
        # A smoke path makes the smoke step act (GET it on every new instance) before the switch.
        set_manifest(app_dir, 'health_timeout = "15s"', 'health_timeout = "15s"\nsmoke_path = "/healthz"')
        self.sprout = Sprout(home=tmp_path / "home", app_dir=app_dir, port=free_port())
        self.sprout.up()
        self.store = StateStore(self.sprout.home / "state.db")
        self.load = VersionLoad(self.sprout.port, max_seconds=300).__enter__()
        self.load.wait_all("v1", seconds=0.5)
        self._answers: list[object] = []
        self._killed = 0.0

    def close(self) -> None:
        """Stop the load, close the store, kill every process of the home by pid."""
        self.load.stop()
        self.store.close()
        kill_all(processes_of(self.sprout.home))

    def push(self, bad: bool = False) -> str:
        """Push a new version of relapp (`bad`: every 20th request to it answers 500); its label."""
        app_dir = self.sprout.app_dir
        (app_dir / "marker.txt").write_text(f"{time.time()}")
        if bad:
            (app_dir / "BAD_RATE").write_text("0.05")
        else:
            (app_dir / "BAD_RATE").unlink(missing_ok=True)
        self.sprout.run("push", str(app_dir))
        latest = self.store.latest_version(APP)
        assert latest is not None
        return latest.label

    def start(self, version: str, strategy: str) -> Deployment:
        """Start a release through the API (the daemon runs the test gate, then its engine takes over)."""
        body = self._api("POST", "/v1/deploy", self._deploy_request(version, strategy))
        return self.store.get_deployment(int(body["deployment"]["id"]))

    def until(self, deployment: Deployment, step: str) -> Deployment:
        """Wait for the daemon's engine to reach `step`."""
        deadline = time.monotonic() + RELEASE_TIMEOUT
        while time.monotonic() < deadline:
            found = self.store.get_deployment(deployment.id)
            if found.state == step:
                return found
            if found.state == DONE:
                raise AssertionError(f"release {deployment.id} ended before {step}: {found.reason}")
            time.sleep(0.02)
        raise AssertionError(
            f"release {deployment.id} not at {step}: {self.store.get_deployment(deployment.id)}"
        )

    def drive(self, deployment: Deployment) -> Deployment:
        """Wait for the daemon's engine to finish the release, then for the fleet to settle."""
        deadline = time.monotonic() + RELEASE_TIMEOUT
        found = self.store.get_deployment(deployment.id)
        while found.state != DONE:
            if time.monotonic() > deadline:
                raise AssertionError(f"release {deployment.id} not done within {RELEASE_TIMEOUT:g}s: {found}")
            time.sleep(0.05)
            found = self.store.get_deployment(deployment.id)
        self._settle()
        return found

    def hurt(self, deployment: Deployment) -> None:
        """Nothing to do: the bad version's own 500s, under the load, are what the router counts."""

    def pass_interval(self) -> None:
        """Nothing to do: the daemon's engine waits the canary interval on the real clock."""

    def pass_a_minute(self) -> None:
        """Nothing to do: the real rollback window (10 minutes) is far from over."""

    def rollback(self) -> RollbackResult:
        """`POST /v1/rollback` as bob; the answer, once the fleet has settled."""
        body = self._api("POST", "/v1/rollback", {"app": APP, "env": ENV, "user": "bob"})
        self._settle()
        return RollbackResult(instant=bool(body["instant"]), version=str(body["version"]))

    def traffic(self) -> dict[str, int]:
        """{version: weight} of the groups that take traffic, as the router's own table has them."""
        router = RouterProcess(Home(self.sprout.home.resolve()))
        handle = router.current()
        assert handle is not None, "the router is not running"
        table = router.admin(handle).get_table()
        route = next(r for r in table["routes"] if r["name"] == route_name(APP, ENV))
        found: dict[str, int] = {}
        for group in route["groups"]:
            if group["weight"] > 0:
                found[group["version"]] = found.get(group["version"], 0) + int(group["weight"])
        return found

    def running(self) -> dict[str, int]:
        """How many instances of each version run (warm ones included), once the fleet has settled."""
        self._settle()
        instances = self._environment()["instances"]
        return dict(Counter(i["version"] for i in instances if i["state"] == "running"))

    def failures(self) -> list[tuple[str | None, int | None]]:
        """(version, status) of every request of the load that failed so far."""
        return [(h.version, h.status) for h in self.load.failed]

    def kill_at(self, version: str, strategy: str, step: str) -> Deployment:
        """Start a release and SIGKILL the daemon at the boundary into `step` (see kill_at_step.py)."""
        # The API call hangs (its writes are frozen) when the step is the first one: answer or not.
        request = threading.Thread(
            target=self._deploy_quietly, args=(self._deploy_request(version, strategy),), daemon=True
        )
        pid = int(self.sprout.daemon()["pid"])
        try:
            caught = kill_at_step.kill_at(self.store.path, step, pid, request.start, RELEASE_TIMEOUT)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the deploy request: {self._answers}") from exc
        self._killed = time.monotonic()
        request.join(10)
        return self.store.get_deployment(caught)

    def recover(self, deployment: Deployment) -> Deployment:
        """Start the daemon again (it resumes unfinished releases) and wait for the release to finish."""
        self.sprout.run("daemon", "start")
        back = time.monotonic() - self._killed
        done = self.drive(deployment)
        print(
            f"\n[local] daemon killed at {deployment.state}: release {done.outcome}, daemon back {back:.1f}s "
            f"and the fleet settled {time.monotonic() - self._killed:.1f}s after the kill; "
            f"{len(self.load.hits)} requests, {len(self.load.failed)} failed"
        )
        return done

    def _deploy_request(self, version: str, strategy: str) -> dict[str, Any]:
        return {"app": APP, "env": ENV, "version": version, "strategy": strategy, "user": "alice"}

    def _deploy_quietly(self, request: dict[str, Any]) -> None:
        try:
            self._answers.append(self._api("POST", "/v1/deploy", request))
        except (httpx.HTTPError, UserError, AssertionError) as exc:
            self._answers.append(exc)

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.request(
            method,
            str(self.sprout.daemon()["api_url"]) + path,
            json=body,
            headers={"Authorization": f"Bearer {self.sprout.token()}"},
            timeout=60,
            trust_env=False,
        )
        answer = dict(response.json())
        if response.status_code == 400 and answer.get("kind") == "UserError":
            refused = UserError(str(answer["error"]))
            # The exit code the daemon gives (the CLI exits with it), not the class's default.
            refused.exit_code = int(answer["exit_code"])
            raise refused
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {answer}"
        return answer

    def _environment(self) -> dict[str, Any]:
        status = self._api("GET", "/v1/status")
        return dict(next(e for e in status["environments"] if e["app"] == APP and e["env"] == ENV))

    def _settle(self) -> None:
        """Wait until one group serves, the fleet converged, nothing drains, no process unaccounted for,
        and every request through the router is answered by the serving version."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self._api("GET", "/v1/status")
            env = next(e for e in status["environments"] if e["app"] == APP)
            live = [g for g in env["groups"] if g["weight"] > 0]
            quiet = all(i["state"] == "running" for i in env["instances"])
            extra = {p.pid for p in processes_of(self.sprout.home)} - expected_processes(self.sprout, status)
            seen = {"groups": env["groups"], "converged": env["converged"], "extra": extra}
            if len(live) == 1 and env["converged"] and quiet and not extra:
                self.load.wait_all(str(live[0]["version"]), seconds=0.5)
                return
            time.sleep(0.2)
        raise AssertionError(f"the fleet did not settle within {SETTLE_TIMEOUT:g}s: {seen}")

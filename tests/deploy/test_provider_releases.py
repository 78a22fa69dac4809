"""One release engine on every provider's fleet: the same scenarios against the local provider for real
(a daemon, its router and relapp instances on loopback, under load: `local_fleet_kit.py`), AWS (moto,
in-process) and Kubernetes (the in-memory cluster), each checked on the platform itself (the router's
table, listener weights and groups, Service selectors and Deployments).

On AWS and Kubernetes the engine runs in this process on a fake clock, and a crash is simulated by a
fleet that dies right after the first change a step makes (right after the step, for one that changes
nothing); a new engine over the same state store and platform then resumes the release, as a restarted
daemon or a re-run `deploy` does. Locally the daemon's own engine is killed with SIGKILL at the step
and `sprout daemon start` resumes it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest

# The moto server and its fills for moto's gaps (launch template versions), as the AWS tests use them.
from aws.conftest import _moto_launch_template_versions, aws, moto_endpoint  # noqa: F401
from aws.test_deploy_moto import Clock
from sprout.bundle import FolderStore, S3Store, pack
from sprout.controlplane.fleet import ControlPlaneFleet
from sprout.deploy.engine import DONE, ReleaseEngine, RollbackResult
from sprout.deploy.fleet import STRATEGIES, Fleet
from sprout.deploy.gate import GateResult
from sprout.errors import UserError
from sprout.providers.aws.canary import full_names
from sprout.providers.aws.deploystate import S3StateStore
from sprout.providers.aws.fleetapi import AwsFleet
from sprout.providers.aws.releasefleet import AwsReleaseFleet
from sprout.providers.kubernetes.context import Names
from sprout.providers.kubernetes.fleet import KubernetesFleet
from sprout.providers.kubernetes.render import render
from sprout.spec import Manifest, parse_manifest
from sprout.state import StateStore
from sprout.state.models import Deployment

from .local_fleet_kit import LocalWorld
from .memory_cluster import MemoryCluster

ROOT = Path(__file__).resolve().parents[2]
APP, ENV = "hello", "production"
IMAGE = "registry.example.com/sprout:test"
NAMESPACE = "hello-production"


def manifest(strategy: str = "bluegreen") -> Manifest:
    return parse_manifest(
        {
            "app": {"name": APP, "web": "python -m hello"},
            "health": {"path": "/healthz"},
            "instances": {"min": 2, "max": 4},
            "deploy": {
                "strategy": strategy,
                "rollback_window": "10m",
                "health_timeout": "2m",
                "canary": {"steps": [20, 50, 100], "interval": "60s", "min_requests": 20},
            },
        }
    )


class Killed(Exception):
    """The process running the engine died."""


class World(Protocol):
    """One provider's platform with v1 serving on 2 instances, and the release engine's state store."""

    provider: str
    app: str
    env: str
    store: StateStore

    def push(self, bad: bool = False) -> str:
        """A new version's label (`bad`: its canary's requests fail, by its own code or by `hurt`)."""
        ...

    def start(self, version: str, strategy: str) -> Deployment:
        """Start releasing `version` (a refused strategy raises `UserError`)."""
        ...

    def until(self, deployment: Deployment, step: str) -> Deployment:
        """Advance the release until it is at `step`."""
        ...

    def drive(self, deployment: Deployment) -> Deployment:
        """Advance the release until it is done (and the platform has settled)."""
        ...

    def hurt(self, deployment: Deployment) -> None:
        """Make the platform see the release's new group fail with 5xx over the next interval."""
        ...

    def pass_interval(self) -> None:
        """Let a canary analysis interval go by."""
        ...

    def pass_a_minute(self) -> None:
        """Let a minute go by (well inside the rollback window)."""
        ...

    def rollback(self) -> RollbackResult:
        """Roll the environment back as another user."""
        ...

    def traffic(self) -> dict[str, int]:
        """{version: weight} of the groups that take traffic, as the platform has them."""
        ...

    def running(self) -> dict[str, int]:
        """How many instances run each version (warm ones included)."""
        ...

    def failures(self) -> list[tuple[str | None, int | None]]:
        """(version, status) of requests that failed through the platform's front door (none is sent in
        process)."""
        ...

    def kill_at(self, version: str, strategy: str, step: str) -> Deployment:
        """Start a release and kill the process running its engine at `step`."""
        ...

    def recover(self, deployment: Deployment) -> Deployment:
        """A new engine process resumes the release; the release once done."""
        ...


@dataclass
class EngineWorld:
    """AWS or Kubernetes: the engine in this process over the provider's fleet, on a fake clock; v2 packed."""

    provider: str
    store: StateStore
    clock: Clock
    make_fleet: Callable[[], Fleet]
    #: The platform's own view: {version: weight} of the groups that take traffic.
    traffic: Callable[[], dict[str, int]]
    #: How many instances run each version (warm ones included).
    running: Callable[[], dict[str, int]]
    #: Make a colour's traffic fail with 5xx over the next interval (where the platform has metrics).
    hurt_colour: Callable[[str], None]
    app: str = APP
    env: str = ENV

    def engine(self, fleet: Fleet | None = None) -> ReleaseEngine:
        return ReleaseEngine(
            self.store, fleet or self.make_fleet(), lambda app, version: manifest(), self.clock
        )

    def push(self, bad: bool = False) -> str:
        return "v2"

    def start(self, version: str, strategy: str) -> Deployment:
        return self.engine().start(APP, ENV, version, strategy, "alice")

    def until(self, deployment: Deployment, step: str, engine: ReleaseEngine | None = None) -> Deployment:
        engine = engine or self.engine()
        for _ in range(200):
            if deployment.state == step:
                return deployment
            if deployment.state == DONE:
                raise AssertionError(f"release {deployment.id} ended before {step}: {deployment.reason}")
            deployment = engine.tick(deployment.id)
            self.clock.now += 1
        raise AssertionError(f"stuck at {deployment.state}: {deployment.data.get('waiting')}")

    def drive(self, deployment: Deployment, engine: ReleaseEngine | None = None) -> Deployment:
        engine = engine or self.engine()
        for _ in range(200):
            deployment = engine.tick(deployment.id)
            if deployment.state == DONE:
                return deployment
            self.clock.now += 1
        raise AssertionError(f"stuck at {deployment.state}: {deployment.data.get('waiting')}")

    def hurt(self, deployment: Deployment) -> None:
        self.hurt_colour(str(deployment.data["new"]))

    def pass_interval(self) -> None:
        self.clock.now += 61

    def pass_a_minute(self) -> None:
        self.clock.now += 60

    def rollback(self) -> RollbackResult:
        return self.engine().rollback(APP, ENV, "bob")

    def failures(self) -> list[tuple[str | None, int | None]]:
        return []

    def kill_at(self, version: str, strategy: str, step: str) -> Deployment:
        deployment = self.until(self.start(version, strategy), step)
        dying = self.engine(DyingFleet(self.make_fleet(), self.store, deployment.id, step))  # type: ignore[arg-type]
        # A step that makes no fleet call (smoke without a smoke path) dies right after it instead.
        with contextlib.suppress(Killed):
            dying.tick(deployment.id)
        return self.store.get_deployment(deployment.id)

    def recover(self, deployment: Deployment) -> Deployment:
        return self.drive(deployment)


def no_tests(version: str) -> GateResult:
    return GateResult(passed=True, seconds=0.0, skipped="the manifest has no [app] test command")


def versions(store: StateStore, tmp_path: Path) -> tuple[FolderStore, dict[str, str]]:
    """v1 and v2 of the hello example, packed into a local artifact store and recorded."""
    local = FolderStore(tmp_path / "artifacts")
    app = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", app)
    shas = {}
    for label in ("v1", "v2"):
        (app / "release.txt").write_text(label)
        sha = local.put(pack(app, tmp_path / label).path)
        store.add_version(APP, sha, 1000, manifest(), local.url)
        shas[label] = sha
    store.upsert_environment(APP, ENV, manifest(), app)
    store.set_current_version(APP, ENV, "v1")
    return local, shas


def aws_world(tmp_path: Path, store: StateStore, clock: Clock) -> EngineWorld:
    from aws.fleet_setup import BUCKET, build_fleet, c

    local, shas = versions(store, tmp_path)
    refs = build_fleet(manifest(), shas["v1"])
    sha_to_label = {sha: label for label, sha in shas.items()}

    def make_fleet() -> AwsReleaseFleet:
        return AwsReleaseFleet(
            AwsFleet(refs, c("elbv2"), c("autoscaling"), c("ec2")),
            S3StateStore(c("s3"), BUCKET, APP),
            S3Store(BUCKET, APP, client=c("s3")),
            local,
            lambda version: shas[version],
            sha_to_label.get,
            lambda version: manifest(),
            no_tests,
            cloudwatch=c("cloudwatch"),
            clock=clock,
            sleep=clock.sleep,
        )

    def by_version(values: dict[str, int]) -> dict[str, int]:
        fleet = make_fleet().fleet
        found: dict[str, int] = {}
        for colour, value in values.items():
            if value:
                label = sha_to_label[fleet.bundle_of(colour)]  # type: ignore[arg-type]
                found[label] = found.get(label, 0) + value
        return found

    def running() -> dict[str, int]:
        fleet = make_fleet().fleet
        return by_version({colour: fleet.size(colour).desired for colour in ("blue", "green")})

    def hurt(colour: str) -> None:
        lb, tg = full_names(refs.listener_arn, refs.target_groups[colour])
        dims = [{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": tg}]
        when = datetime.fromtimestamp(clock.now + 5, UTC)
        c("cloudwatch").put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[
                {"MetricName": "RequestCount", "Dimensions": dims, "Timestamp": when, "Value": 100.0},
                {
                    "MetricName": "HTTPCode_Target_5XX_Count",
                    "Dimensions": dims,
                    "Timestamp": when,
                    "Value": 50.0,
                },
            ],
        )

    return EngineWorld(
        "aws", store, clock, make_fleet, lambda: by_version(dict(make_fleet().fleet.weights())), running, hurt
    )


def k8s_world(tmp_path: Path, store: StateStore, clock: Clock) -> EngineWorld:
    local, shas = versions(store, tmp_path)
    names = Names(APP, NAMESPACE)
    cluster = MemoryCluster(render(manifest(), ENV, "v1", shas["v1"], local.url, IMAGE, NAMESPACE), 1)
    cluster.set_ready(names.deployment("blue"), 2)

    def context_of(version: str) -> Any:
        from sprout.providers.kubernetes.context import RenderContext

        return RenderContext(manifest(), ENV, version, shas[version], local.url, IMAGE, NAMESPACE)

    def make_fleet() -> KubernetesFleet:
        return KubernetesFleet(cluster, names, context_of, no_tests)

    def deployments() -> dict[str, tuple[str, int]]:
        found = {}
        for colour in ("blue", "green"):
            d = cluster.objects.get(("Deployment", names.deployment(colour)))
            if d is not None:
                found[colour] = (
                    d["spec"]["template"]["metadata"]["labels"]["sprout.dev/version"],
                    int(d["spec"]["replicas"]),
                )
        return found

    def traffic() -> dict[str, int]:
        live = cluster.selector(names.service())
        return {deployments()[live][0]: 100}

    def running() -> dict[str, int]:
        found: dict[str, int] = {}
        for version, replicas in deployments().values():
            if replicas:
                found[version] = found.get(version, 0) + replicas
        return found

    def hurt(colour: str) -> None:
        raise AssertionError("kubernetes has no per-colour metrics: canary is refused there")

    return EngineWorld("k8s", store, clock, make_fleet, traffic, running, hurt)


@pytest.fixture(
    params=[pytest.param("local", marks=pytest.mark.slow), pytest.param("aws", marks=pytest.mark.slow), "k8s"]
)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "local":
        # Each version's dependencies installed once for the run, as the end-to-end tests do.
        request.getfixturevalue("shared_bundle_cache")
        local = LocalWorld(tmp_path)
        try:
            yield local
        finally:
            local.close()
        return
    store, clock = StateStore(tmp_path / "state.db"), Clock()
    try:
        if request.param == "k8s":
            yield k8s_world(tmp_path, store, clock)
            return
        # The AWS tests' moto server (real HTTP on 127.0.0.1), reset for each test.
        request.getfixturevalue("aws")
        yield aws_world(tmp_path, store, clock)
    finally:
        store.close()


def test_bluegreen_switches_at_once_and_keeps_the_old_fleet_warm(world: World) -> None:
    version = world.push()
    done = world.drive(world.start(version, "bluegreen"))
    assert done.outcome == "succeeded", done.reason
    assert world.traffic() == {version: 100}
    assert world.running() == {"v1": 2, version: 2}
    assert world.store.get_environment(world.app, world.env).current_version == version  # type: ignore[union-attr]

    # Inside the rollback window: an instant switch back to the warm v1 fleet.
    world.pass_a_minute()
    result = world.rollback()
    assert (result.instant, result.version) == (True, "v1")
    assert world.traffic() == {"v1": 100}
    assert world.running() == {"v1": 2}
    history = [(h.action, h.version) for h in world.store.list_history(world.app, world.env)]
    assert history[-2:] == [("deploy", version), ("rollback", "v1")]
    assert world.failures() == []


def test_a_strategy_the_fleet_cannot_do_is_refused_naming_the_alternative(world: World) -> None:
    cannot = {
        "local": [],
        "aws": [("rolling", "use bluegreen")],
        "k8s": [("canary", "use bluegreen")],
    }[world.provider]
    if world.provider == "local":
        assert ControlPlaneFleet.strategies == STRATEGIES
    before = world.store.list_deployments(world.app, world.env)
    # A strategy no provider knows is refused the same way, before anything starts.
    for strategy, message in [*cannot, ("blue-green", "unknown strategy 'blue-green' \\(rolling, ")]:
        with pytest.raises(UserError, match=message) as raised:
            world.start("v1", strategy)
        assert raised.value.exit_code == 2
    assert world.store.list_deployments(world.app, world.env) == before
    assert world.traffic() == {"v1": 100}


def test_a_canary_that_fails_is_rolled_back_automatically(world: World) -> None:
    if world.provider == "k8s":
        pytest.skip("a Service selects one colour: canary is refused on Kubernetes (see the refusal test)")
    bad = world.push(bad=True)
    deployment = world.until(world.start(bad, "canary"), "canary_analyze")
    assert world.traffic() == {"v1": 80, bad: 20}
    world.hurt(deployment)
    world.pass_interval()
    done = world.drive(deployment)
    assert done.outcome == "rolled_back"
    assert done.reason is not None and done.reason.startswith("canary analysis: canary 5xx rate"), done.reason
    assert world.traffic() == {"v1": 100}
    assert world.running() == {"v1": 2}
    assert world.store.get_environment(world.app, world.env).current_version == "v1"  # type: ignore[union-attr]
    # Only the bad canary's own 500s reached users: no request failed as traffic moved.
    assert all(failure == (bad, 500) for failure in world.failures()), world.failures()


class DyingFleet:
    """A fleet whose process dies right after the first call a release makes to it at step `at`."""

    def __init__(self, fleet: Fleet, store: StateStore, deployment: int, at: str) -> None:
        self._fleet, self._store, self._deployment, self._at = fleet, store, deployment, at

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._fleet, name)
        if not callable(found) or self._store.get_deployment(self._deployment).state != self._at:
            return found

        def dying(*args: Any) -> Any:
            found(*args)
            raise Killed(f"killed after {name} at {self._at}")

        return dying


# Every step of a blue/green release (locally a smoke path makes `smoke` act; elsewhere it does nothing).
@pytest.mark.parametrize("step", ["release", "launch", "wait_healthy", "smoke", "switch"])
def test_an_engine_killed_at_a_bluegreen_step_resumes_to_one_version(world: World, step: str) -> None:
    version = world.push()
    deployment = world.kill_at(version, "bluegreen", step)
    # A new process (a restarted daemon, a re-run deploy) resumes the release where it stood.
    done = world.recover(deployment)
    assert done.outcome == "succeeded", done.reason
    assert world.traffic() == {version: 100}
    assert world.running() == {"v1": 2, version: 2}
    assert world.failures() == []

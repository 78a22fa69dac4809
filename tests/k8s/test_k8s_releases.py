"""Releases on Kubernetes as `sprout k8s deploy` and `rollback` run them (the release engine over the
colour Deployments), against an in-memory cluster (no cluster runs on this machine)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import IMAGE, SHA, STORE, app_dir, manifest

from deploy.memory_cluster import MemoryCluster
from sprout.deploy.drive import drive
from sprout.deploy.gate import GateResult
from sprout.errors import UserError
from sprout.providers.kubernetes.context import Names, RenderContext
from sprout.providers.kubernetes.fleet import Patch, rollout_done, switch_patches
from sprout.providers.kubernetes.releases import KubernetesReleases, record, releases
from sprout.providers.kubernetes.render import render
from sprout.spec import Manifest
from sprout.state import StateStore

ENV, NAMESPACE = "production", "microsite-production"


class Clock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def microsite() -> Manifest:
    """The microsite example without its release command (a one-off Job Sprout does not create yet)."""
    found = manifest("microsite")
    return found.model_copy(update={"app": found.app.model_copy(update={"release": None})})


def installed(ready_after: int | None = 1) -> MemoryCluster:
    """microsite v7 installed with blue live at 3 ready pods."""
    cluster = MemoryCluster(render(microsite(), ENV, "v7", SHA, STORE, IMAGE), ready_after)
    cluster.set_ready("microsite-blue", 3)
    return cluster


def context(version: str, sha: str) -> RenderContext:
    return RenderContext(microsite(), ENV, version, sha, STORE, IMAGE, NAMESPACE)


def passed(version: str) -> GateResult:
    return GateResult(passed=True, seconds=0.0, skipped="the manifest has no [app] test command")


def world(cluster: MemoryCluster, tmp_path: Path, clock: Clock) -> KubernetesReleases:
    """The engine as `sprout k8s deploy` wires it, v7 (serving) and v8 recorded as pushed."""
    found = releases(cluster, StateStore(tmp_path / "releases.db"), context("v8", "8" * 64), passed, clock)
    record(found, context("v7", SHA), app_dir("microsite"))
    record(found, context("v8", "8" * 64), app_dir("microsite"))
    return found


def test_deploy_stages_waits_then_switches_keeping_the_old_colour_warm(tmp_path: Path) -> None:
    cluster, clock, lines = installed(ready_after=2), Clock(), []
    r = world(cluster, tmp_path, clock)
    assert r.store.get_environment("microsite", ENV).current_version == "v7"  # type: ignore[union-attr]
    started = r.engine.start("microsite", ENV, "v8", "bluegreen", "alice")
    done = drive(r.engine, started, lines.append, 2.0, clock.sleep)
    assert done.outcome == "succeeded", done.reason

    green = cluster.objects[("Deployment", "microsite-green")]
    assert green["spec"]["replicas"] == 3
    assert green["spec"]["template"]["metadata"]["labels"]["sprout.dev/version"] == "v8"
    assert cluster.selector("microsite") == "green"
    assert cluster.selector("microsite-preview") == "blue"
    hpa = cluster.objects[("HorizontalPodAutoscaler", "microsite")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "microsite-green"
    # Blue keeps its pods for an instant rollback, marked with the end of the rollback window.
    blue = cluster.objects[("Deployment", "microsite-blue")]
    assert blue["spec"]["replicas"] == 3
    assert float(blue["metadata"]["annotations"]["sprout.dev/standby-until"]) == clock.now + 600
    assert cluster.log[:2] == ["apply ConfigMap/microsite-green", "apply Deployment/microsite-green"]
    # Traffic moves once, after green is ready: the Services and the HPA are patched together.
    switch = cluster.log.index("patch Service/microsite")
    assert cluster.log[switch : switch + 3] == [
        "patch Service/microsite",
        "patch Service/microsite-preview",
        "patch HorizontalPodAutoscaler/microsite",
    ]
    assert lines[0].startswith(f"release {done.id}: v8 (bluegreen) by alice")
    assert f"release {done.id}: launch → wait_healthy: launching 3 instance(s) of v8 in group green" in lines
    assert f"release {done.id}: release succeeded: v8 serves 100% of traffic" in lines
    assert r.store.get_environment("microsite", ENV).current_version == "v8"  # type: ignore[union-attr]


def test_a_colour_that_never_gets_ready_keeps_traffic_where_it_is(tmp_path: Path) -> None:
    cluster, clock = installed(ready_after=None), Clock()
    r = world(cluster, tmp_path, clock)
    done = drive(
        r.engine, r.engine.start("microsite", ENV, "v8", "bluegreen", "alice"), print, 2.0, clock.sleep
    )
    assert done.outcome == "aborted"
    assert done.reason.startswith("new instances not healthy on /healthz after 120s (0/3 healthy)")
    assert cluster.selector("microsite") == "blue"
    assert not [entry for entry in cluster.log if entry.startswith("patch Service")]
    assert cluster.objects[("Deployment", "microsite-green")]["spec"]["replicas"] == 0
    assert r.store.get_environment("microsite", ENV).current_version == "v7"  # type: ignore[union-attr]


def test_rollback_switches_back_while_the_old_colour_is_warm_then_releases_it_anew(tmp_path: Path) -> None:
    cluster, clock = installed(), Clock()
    r = world(cluster, tmp_path, clock)
    drive(r.engine, r.engine.start("microsite", ENV, "v8", "bluegreen", "alice"), print, 2.0, clock.sleep)

    result = r.engine.rollback("microsite", ENV, "bob")
    assert (result.instant, result.version) == (True, "v7")
    assert cluster.selector("microsite") == "blue"
    assert cluster.selector("microsite-preview") == "green"
    hpa = cluster.objects[("HorizontalPodAutoscaler", "microsite")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "microsite-blue"
    assert cluster.objects[("Deployment", "microsite-green")]["spec"]["replicas"] == 0

    # v8 again, then its window passes: a rollback is a release of v7 (its tests passed before).
    drive(r.engine, r.engine.start("microsite", ENV, "v8", "bluegreen", "alice"), print, 2.0, clock.sleep)
    clock.now += 600
    assert r.engine.retire_expired("microsite", ENV) == ["blue"]
    with pytest.raises(UserError, match="--strategy rolling: Kubernetes switches a Service's selector"):
        r.engine.rollback("microsite", ENV, "bob")  # the manifest's default strategy is never substituted
    result = r.engine.rollback("microsite", ENV, "bob", strategy="bluegreen")
    assert (result.instant, result.version) == (False, "v7")
    assert result.deployment is not None
    done = drive(r.engine, result.deployment, print, 2.0, clock.sleep)
    assert done.outcome == "succeeded", done.reason
    assert cluster.selector("microsite") == "blue"
    blue = cluster.objects[("Deployment", "microsite-blue")]
    assert blue["spec"]["template"]["metadata"]["labels"]["sprout.dev/version"] == "v7"


def test_switch_without_an_hpa_patches_only_the_services() -> None:
    assert switch_patches(Names("app", "ns"), autoscaled=False, to="blue") == [
        Patch("v1", "Service", "app", {"spec": {"selector": {"sprout.dev/color": "blue"}}}),
        Patch("v1", "Service", "app-preview", {"spec": {"selector": {"sprout.dev/color": "green"}}}),
    ]


@pytest.mark.parametrize(
    ("deployment", "done"),
    [
        ({"spec": {"replicas": 2}, "metadata": {"generation": 3}, "status": None}, False),
        (
            {
                "spec": {"replicas": 2},
                "metadata": {"generation": 3},
                "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2},
            },
            True,
        ),
        (
            {
                "spec": {"replicas": 2},
                "metadata": {"generation": 4},
                "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2},
            },
            False,
        ),
        (
            {
                "spec": {"replicas": 2},
                "metadata": {"generation": 3},
                "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 3},
            },
            False,
        ),
        (
            {
                "spec": {"replicas": 2},
                "metadata": {"generation": 3},
                "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1},
            },
            False,
        ),
    ],
)
def test_rollout_done(deployment: dict[str, Any], done: bool) -> None:
    assert rollout_done(deployment) is done


def test_the_deploy_and_rollback_commands_on_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sprout k8s deploy` and `rollback` in-process, the cluster (the outer boundary) in memory."""
    from typer.testing import CliRunner

    from sprout.cli import k8s_cmd
    from sprout.cli.main import load_commands

    app = tmp_path / "tiny"
    app.mkdir()
    (app / "sprout.toml").write_text('[app]\nname = "tiny"\nweb = "python -m http.server $PORT"\n')
    cluster = MemoryCluster(render(manifest("minimal"), ENV, "v7", SHA, STORE, IMAGE), 1)
    cluster.set_ready("tiny-blue", 1)
    monkeypatch.setenv("SPROUT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(k8s_cmd, "_connected", lambda kubeconfig, context, act: act(cluster))
    cli = load_commands("k8s")
    pinned = ["--bundle-sha256", "8" * 64, "--store-url", STORE, "--version", "v8", "-e", ENV]

    deployed = CliRunner().invoke(
        cli, ["k8s", "deploy", str(app), *pinned, "-s", "bluegreen", "--skip-tests"]
    )
    assert deployed.exit_code == 0, deployed.output
    lines = deployed.stdout.splitlines()
    assert lines[0] == "tests skipped (--skip-tests)"
    assert "release 1: switch → finish: 100% of traffic on v8" in lines
    assert re.fullmatch(
        r"live: green \(v8\); blue \(v7\) kept warm until \d\d:\d\d:\d\d: `sprout k8s rollback` switches "
        r"back, `sprout k8s apply` after that scales it to zero",
        lines[-2],
    )
    assert lines[-1] == "release 1: succeeded"
    assert cluster.selector("tiny") == "green"

    rolled = CliRunner().invoke(cli, ["k8s", "rollback", str(app), "-e", ENV])
    assert rolled.exit_code == 0, rolled.output
    assert rolled.stdout.splitlines()[-1] == "live: blue (v7)"
    assert cluster.selector("tiny") == "blue"

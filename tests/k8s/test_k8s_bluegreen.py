"""Blue/green by selector switch, against an in-memory cluster (no cluster runs on this machine)."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_helpers import IMAGE, SHA, STORE, manifest

from deploy.memory_cluster import MemoryCluster
from sprout.errors import ServiceError, UserError
from sprout.providers.kubernetes.bluegreen import (
    POLL_INTERVAL,
    BlueGreen,
    Patch,
    rollout_done,
    switch_patches,
)
from sprout.providers.kubernetes.context import Names, RenderContext
from sprout.providers.kubernetes.render import render


class Clock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def installed(ready_after: int | None = 1) -> MemoryCluster:
    """microsite v7 installed with blue live at 3 ready pods."""
    cluster = MemoryCluster(render(manifest("microsite"), "production", "v7", SHA, STORE, IMAGE), ready_after)
    cluster.set_ready("microsite-blue", 3)
    return cluster


def v8() -> RenderContext:
    return RenderContext(
        manifest("microsite"), "production", "v8", "8" * 64, STORE, IMAGE, "microsite-production"
    )


def test_deploy_stages_waits_then_switches() -> None:
    cluster, clock, lines = installed(ready_after=2), Clock(), []
    live = BlueGreen(cluster, lines.append, clock, clock.sleep).deploy(v8())
    assert live == "green"
    green = cluster.objects[("Deployment", "microsite-green")]
    assert green["spec"]["replicas"] == 3
    assert green["spec"]["template"]["metadata"]["labels"]["sprout.dev/version"] == "v8"
    assert cluster.selector("microsite") == "green"
    assert cluster.selector("microsite-preview") == "blue"
    hpa = cluster.objects[("HorizontalPodAutoscaler", "microsite")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "microsite-green"
    # Blue is untouched: it keeps its pods for a rollback.
    assert cluster.objects[("Deployment", "microsite-blue")]["spec"]["replicas"] == 3
    assert cluster.log == [
        "apply ConfigMap/microsite-green",
        "apply Deployment/microsite-green",
        "patch Service/microsite",
        "patch Service/microsite-preview",
        "patch HorizontalPodAutoscaler/microsite",
    ]
    assert clock.now == 2 * POLL_INTERVAL
    assert lines == [
        "staging v8 on green with 3 pods (blue stays live)",
        "microsite-green: 3 pods ready",
        "switched: Service microsite now selects green",
    ]


def test_a_colour_that_never_gets_ready_keeps_traffic_where_it_is() -> None:
    cluster, clock = installed(ready_after=None), Clock()
    with pytest.raises(ServiceError) as info:
        BlueGreen(cluster, lambda line: None, clock, clock.sleep).deploy(v8())
    assert str(info.value) == (
        "k8s deploy: microsite-green was not ready within 120s (0 pods ready); traffic stays on blue. "
        "See `kubectl -n microsite-production describe deployment microsite-green`"
    )
    assert cluster.selector("microsite") == "blue"
    assert not [entry for entry in cluster.log if entry.startswith("patch")]
    assert clock.now == pytest.approx(120, abs=POLL_INTERVAL)


def test_deploy_needs_an_installed_environment() -> None:
    with pytest.raises(UserError) as info:
        BlueGreen(MemoryCluster([]), lambda line: None).deploy(v8())
    assert str(info.value) == (
        "k8s deploy: microsite is not installed in namespace microsite-production; run `sprout k8s apply` first"
    )


def test_rollback_switches_back_while_the_old_colour_runs() -> None:
    cluster, clock = installed(), Clock()
    bluegreen = BlueGreen(cluster, lambda line: None, clock, clock.sleep)
    bluegreen.deploy(v8())
    names = Names("microsite", "microsite-production")
    assert bluegreen.rollback(names, autoscaled=True) == "blue"
    assert cluster.selector("microsite") == "blue"
    assert cluster.selector("microsite-preview") == "green"
    assert cluster.objects[("HorizontalPodAutoscaler", "microsite")]["spec"]["scaleTargetRef"]["name"] == (
        "microsite-blue"
    )
    # Once green is scaled to zero there is nothing to switch back to.
    cluster.set_ready("microsite-green", 0)
    with pytest.raises(UserError) as info:
        bluegreen.rollback(names, autoscaled=True)
    assert str(info.value) == (
        "k8s rollback: microsite-green has no ready pods to switch back to "
        "(scaled to zero after the rollback window); deploy the old version instead"
    )


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

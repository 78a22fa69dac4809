"""Cluster access without a cluster: clear errors, the kubeconfig search, diffs, the HPA patch body, notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import IMAGE, NO_CLUSTER, SHA, STORE, closed_port, manifest, write_kubeconfig

from sprout.errors import ServiceError, UserError
from sprout.providers.kubernetes.cluster import (
    Change,
    changed_fields,
    connect,
    keep_replicas,
    kubeconfig_path,
)
from sprout.providers.kubernetes.config import instance_spec
from sprout.providers.kubernetes.context import RenderContext
from sprout.providers.kubernetes.hpapatch import patch_body
from sprout.providers.kubernetes.notes import notes
from sprout.spec import parse_manifest


def test_no_kubeconfig_is_a_clear_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        connect(None, None, {"HOME": str(tmp_path)})
    assert str(info.value) == NO_CLUSTER


def test_unreachable_cluster_is_a_service_error(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{closed_port()}"
    config = write_kubeconfig(tmp_path / "kubeconfig", server)
    with pytest.raises(ServiceError) as info:
        connect(config, None, {})
    assert str(info.value) == (
        f"kubernetes: the cluster at {server} is not reachable (MaxRetryError); "
        "check the kubeconfig's context and that the API server is up"
    )


def test_unknown_context_is_a_user_error(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443")
    with pytest.raises(UserError) as info:
        connect(config, "staging", {})
    assert str(info.value).startswith(f"kubernetes: cannot use kubeconfig {config}: ")
    assert "staging" in str(info.value)


def test_missing_explicit_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        kubeconfig_path(tmp_path / "nope", {})
    assert (
        str(info.value) == f"kubernetes: kubeconfig {tmp_path / 'nope'} does not exist (check --kubeconfig)"
    )


def test_kubeconfig_search_order(tmp_path: Path) -> None:
    home_config = tmp_path / ".kube" / "config"
    home_config.parent.mkdir()
    home_config.write_text("")
    listed = tmp_path / "listed"
    listed.write_text("")
    assert kubeconfig_path(None, {"HOME": str(tmp_path)}) == home_config
    env = {"HOME": str(tmp_path), "KUBECONFIG": f"{tmp_path / 'absent'}:{listed}"}
    assert kubeconfig_path(None, env) == listed
    assert kubeconfig_path(None, {"HOME": str(tmp_path / "empty")}) is None


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, ["a"]),
        ({"spec": {"replicas": 2, "x": [1]}}, {"spec": {"replicas": 2, "x": [1, 2]}}, ["spec.x"]),
        (
            {"metadata": {"resourceVersion": "1", "labels": {"a": "b"}}},
            {"metadata": {"resourceVersion": "2"}},
            ["metadata.labels"],
        ),
        ({}, {"data": {"k": "v"}}, ["data"]),
    ],
)
def test_changed_fields(live: dict[str, Any], desired: dict[str, Any], expected: list[str]) -> None:
    assert changed_fields(live, desired) == expected


def test_change_lines() -> None:
    assert str(Change("Deployment", "shop-blue", "create")) == "+ Deployment/shop-blue: create"
    assert (
        str(Change("Service", "shop", "update", ("spec.selector",)))
        == "~ Service/shop: update (spec.selector)"
    )
    assert str(Change("Ingress", "shop", "unchanged")) == "= Ingress/shop: unchanged"


@pytest.mark.parametrize(
    ("min_", "max_", "expected"),
    [
        (8, None, {"spec": {"minReplicas": 8}}),
        (None, 12, {"spec": {"maxReplicas": 12}}),
        (3, 12, {"spec": {"minReplicas": 3, "maxReplicas": 12}}),
    ],
)
def test_hpa_patch_body(min_: int | None, max_: int | None, expected: dict[str, Any]) -> None:
    assert patch_body(min_, max_) == expected


def test_hpa_patch_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="give --min, --max or both"):
        patch_body(None, None)


def test_notes_name_what_the_cluster_needs_and_what_is_not_rendered() -> None:
    ctx = RenderContext(manifest("full"), "production", "v7", SHA, STORE, IMAGE, "shop-production")
    assert notes(ctx) == [
        "scaling: the cpu metric needs metrics-server in the cluster",
        "scaling.schedule[2]: one-off `at` actions have no CronJob form; not rendered",
        "secrets: create Secret 'shop-secrets' in namespace 'shop-production' with keys SHOP_API_KEY, SHOP_SIGNING_KEY",
    ]
    micro = RenderContext(
        manifest("microsite"), "production", "v7", SHA, "/srv/bundles", IMAGE, "m-production"
    )
    found = notes(micro)
    assert any(note.startswith("resources.sessions: engine 'memcached' without a url") for note in found)
    assert any("custom metrics adapter" in note for note in found)
    assert any(note.startswith("artifact store '/srv/bundles' is a folder") for note in found)


def test_keep_replicas_carries_the_hpas_count_over() -> None:
    autoscaled = {"kind": "Deployment", "metadata": {"name": "a-blue"}, "spec": {"template": {}}}
    live = {"spec": {"replicas": 7}}
    assert keep_replicas(autoscaled, live)["spec"] == {"template": {}, "replicas": 7}
    idle = {"kind": "Deployment", "metadata": {"name": "a-green"}, "spec": {"replicas": 0}}
    assert keep_replicas(idle, live) is idle
    service = {"kind": "Service", "metadata": {"name": "a"}, "spec": {}}
    assert keep_replicas(service, live) is service
    assert keep_replicas(autoscaled, {"spec": {}}) is autoscaled


def test_a_resource_url_with_a_password_comes_from_the_secret_not_the_config_map() -> None:
    shop = parse_manifest(
        {
            "app": {"name": "shop", "web": "x"},
            "resources": {
                "database": {"engine": "mysql", "url": "mysql://shop@db/shop", "password": "env:DB_PASSWORD"},
                "sessions": {"engine": "redis", "url": "redis://cache:6379/0"},
            },
        }
    )
    ctx = RenderContext(shop, "production", "v7", SHA, STORE, IMAGE, "shop-production")
    spec = instance_spec(ctx)
    assert "DATABASE_URL" not in spec.env_vars and spec.secret_names == ("DATABASE_URL",)
    assert spec.env_vars["SESSION_STORE_URL"] == "redis://cache:6379/0"
    found = notes(ctx)
    assert (
        "resources.database.password: the Secret's DATABASE_URL is the whole url with its password" in found
    )
    assert (
        "secrets: create Secret 'shop-secrets' in namespace 'shop-production' with keys DATABASE_URL" in found
    )

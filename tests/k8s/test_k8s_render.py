"""The rendered objects: schema-valid (strict), golden snapshots, and the properties that matter."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from k8s_helpers import APPS, GOLDEN, IMAGE, SHA, STORE, by_kind, manifest, regenerate, render

from sprout.errors import UserError
from sprout.providers.kubernetes.context import RenderContext
from sprout.providers.kubernetes.render import render as render_objects
from sprout.providers.kubernetes.render import serialize, stage, to_yaml
from sprout.providers.kubernetes.validate import KUBERNETES_VERSION, supported_versions, validate_objects
from sprout.spec import parse_manifest


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, "1.30", supported_versions()[-1]])
@pytest.mark.parametrize("app", APPS)
def test_every_object_validates_strictly_with_zero_errors(app: str, version: str) -> None:
    objects = render(app)
    assert validate_objects(objects, version, strict=True) == []


def test_validation_reports_kind_name_path_and_reason() -> None:
    service = by_kind(render("minimal"), "Service")["tiny"]
    service["spec"]["bogus"] = True
    problems = validate_objects([service])
    assert [str(p) for p in problems] == [
        "Service/tiny at spec: Additional properties are not allowed ('bogus' was unexpected)"
    ]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def summary(obj: dict[str, Any]) -> dict[str, Any]:
    """Kind, name and the fields that carry the manifest's meaning (what the golden files pin)."""
    kind, meta, spec = obj["kind"], obj["metadata"], obj.get("spec", {})
    out: dict[str, Any] = {"kind": kind, "name": meta["name"], "namespace": meta.get("namespace")}
    if kind == "ConfigMap":
        out["spec.json"] = json.loads(obj["data"]["spec.json"])
    elif kind == "Deployment":
        pod = spec["template"]["spec"]
        app = _container(obj)
        out.update(
            replicas=spec.get("replicas"),
            selector=spec["selector"]["matchLabels"],
            strategy=spec["strategy"],
            image=app["image"],
            command=app["command"],
            init=pod["initContainers"][0]["command"],
            envFrom=app.get("envFrom"),
            readiness=app["readinessProbe"],
            liveness=app["livenessProbe"],
            startup=app["startupProbe"],
            preStop=app["lifecycle"]["preStop"],
            terminationGracePeriodSeconds=pod["terminationGracePeriodSeconds"],
            resources=app["resources"],
            spread=[
                (c["topologyKey"], c["maxSkew"], c["whenUnsatisfiable"])
                for c in pod["topologySpreadConstraints"]
            ],
        )
    elif kind == "Service":
        out.update(selector=spec["selector"], ports=spec["ports"])
    elif kind == "HorizontalPodAutoscaler":
        out.update(
            target=spec["scaleTargetRef"]["name"],
            min=spec["minReplicas"],
            max=spec["maxReplicas"],
            metrics=spec["metrics"],
            behavior=spec["behavior"],
        )
    elif kind == "PodDisruptionBudget":
        out.update(minAvailable=spec["minAvailable"], selector=spec["selector"]["matchLabels"])
    elif kind == "Ingress":
        out.update(hosts=[rule["host"] for rule in spec["rules"]], annotations=meta.get("annotations"))
    elif kind == "Role":
        out["rules"] = obj["rules"]
    elif kind == "RoleBinding":
        out.update(role=obj["roleRef"]["name"], subjects=obj["subjects"])
    elif kind == "CronJob":
        job = spec["jobTemplate"]["spec"]["template"]["spec"]
        out.update(
            schedule=spec["schedule"],
            timeZone=spec["timeZone"],
            serviceAccount=job["serviceAccountName"],
            command=job["containers"][0]["command"],
        )
    return out


@pytest.mark.parametrize("app", APPS)
def test_objects_match_golden_snapshot(app: str) -> None:
    text = json.dumps([summary(obj) for obj in render(app)], indent=2, sort_keys=True) + "\n"
    golden = GOLDEN / f"{app}.json"
    if regenerate():
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; create it with SPROUT_UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text(), (
        f"objects changed; rerun with SPROUT_UPDATE_GOLDEN=1 if intended ({golden})"
    )


def test_objects_come_in_apply_order() -> None:
    kinds = [obj["kind"] for obj in render("full")]
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "Deployment",
        "Service",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Ingress",
        "CronJob",
        "CronJob",
    ]
    assert "Namespace" not in [obj["kind"] for obj in render("full", create_namespace=False)]


def test_blue_green_is_two_deployments_and_a_selector() -> None:
    objects = render("microsite")
    deployments = by_kind(objects, "Deployment")
    assert sorted(deployments) == ["microsite-blue", "microsite-green"]
    for colour in ("blue", "green"):
        labels = deployments[f"microsite-{colour}"]["spec"]["template"]["metadata"]["labels"]
        assert labels["sprout.dev/color"] == colour
        assert labels["sprout.dev/version"] == "v7"
    # The HPA owns the live colour's replicas; the idle colour is scaled to zero.
    assert "replicas" not in deployments["microsite-blue"]["spec"]
    assert deployments["microsite-green"]["spec"]["replicas"] == 0
    services = by_kind(objects, "Service")
    assert services["microsite"]["spec"]["selector"]["sprout.dev/color"] == "blue"
    assert services["microsite-preview"]["spec"]["selector"]["sprout.dev/color"] == "green"
    assert (
        by_kind(objects, "HorizontalPodAutoscaler")["microsite"]["spec"]["scaleTargetRef"]["name"]
        == "microsite-blue"
    )

    swapped = render("microsite", live="green")
    services = by_kind(swapped, "Service")
    assert services["microsite"]["spec"]["selector"]["sprout.dev/color"] == "green"
    assert services["microsite-preview"]["spec"]["selector"]["sprout.dev/color"] == "blue"
    assert by_kind(swapped, "Deployment")["microsite-blue"]["spec"]["replicas"] == 0
    assert (
        by_kind(swapped, "HorizontalPodAutoscaler")["microsite"]["spec"]["scaleTargetRef"]["name"]
        == "microsite-green"
    )


def test_each_colour_mounts_its_own_config_map() -> None:
    objects = render("microsite")
    for colour in ("blue", "green"):
        pod = by_kind(objects, "Deployment")[f"microsite-{colour}"]["spec"]["template"]["spec"]
        config = next(v for v in pod["volumes"] if v["name"] == "config")
        assert config["configMap"]["name"] == f"microsite-{colour}"
    assert sorted(by_kind(objects, "ConfigMap")) == ["microsite-blue", "microsite-green"]


def test_without_autoscaling_the_live_colour_runs_the_initial_capacity() -> None:
    m = parse_manifest(
        {"app": {"name": "fixed", "web": "run"}, "instances": {"min": 3}, "scaling": {"enabled": False}}
    )
    objects = render_objects(m, "production", "v1", SHA, STORE, IMAGE)
    assert by_kind(objects, "Deployment")["fixed-blue"]["spec"]["replicas"] == 3
    assert by_kind(objects, "HorizontalPodAutoscaler") == {}


def test_zone_spread_is_hard_and_node_spread_soft() -> None:
    for app in APPS:
        for deployment in by_kind(render(app), "Deployment").values():
            pod = deployment["spec"]["template"]["spec"]
            zone, node = pod["topologySpreadConstraints"]
            assert zone["topologyKey"] == "topology.kubernetes.io/zone"
            assert zone["maxSkew"] == 1
            assert zone["whenUnsatisfiable"] == "DoNotSchedule"
            assert zone["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
            assert zone["matchLabelKeys"] == ["pod-template-hash"]
            assert node["topologyKey"] == "kubernetes.io/hostname"
            assert node["whenUnsatisfiable"] == "ScheduleAnyway"


def test_probes_grace_and_prestop_follow_health_and_deploy() -> None:
    deployment = by_kind(render("full"), "Deployment")["shop-blue"]
    app = _container(deployment)
    readiness, liveness, startup = app["readinessProbe"], app["livenessProbe"], app["startupProbe"]
    assert readiness == {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "successThreshold": 3,
        "failureThreshold": 4,
    }
    assert liveness["successThreshold"] == 1 and liveness["failureThreshold"] == 4
    # Startup holds liveness off for [health] grace (90s at a 10s period).
    assert startup["failureThreshold"] == 9 and startup["periodSeconds"] == 10
    assert app["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    # preStop 5s + drain 20s + 5s for the agent to exit.
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 2, "maxUnavailable": 0}
    assert deployment["spec"]["progressDeadlineSeconds"] == 180


def test_container_runs_the_agent_unprivileged() -> None:
    deployment = by_kind(render("full"), "Deployment")["shop-blue"]
    pod = deployment["spec"]["template"]["spec"]
    app = _container(deployment)
    assert app["command"] == ["sprout", "agent", "--spec", "/etc/sprout/spec.json"]
    assert app["image"] == IMAGE
    assert app["ports"] == [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in [app, pod["initContainers"][0]]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        }


def test_identity_comes_from_the_downward_api() -> None:
    pod = by_kind(render("microsite"), "Deployment")["microsite-blue"]["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    env = {var["name"]: var["valueFrom"]["fieldRef"]["fieldPath"] for var in init["env"]}
    assert env == {
        "SPROUT_INSTANCE": "metadata.name",
        "SPROUT_ZONE": "metadata.labels['topology.kubernetes.io/zone']",
    }
    assert init["command"][-2:] == ["/etc/sprout-config/spec.json", "/etc/sprout/spec.json"]
    # A helper, sized small so it never raises the pod's effective request above the app's.
    assert init["resources"] == {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }


@pytest.mark.parametrize(
    ("size", "requests", "limits"),
    [
        ("small", {"cpu": "250m", "memory": "512Mi"}, {"cpu": "1", "memory": "512Mi"}),
        ("medium", {"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "1Gi"}),
        ("large", {"cpu": "1", "memory": "2Gi"}, {"cpu": "2", "memory": "2Gi"}),
    ],
)
def test_resources_follow_instance_size(size: str, requests: dict[str, str], limits: dict[str, str]) -> None:
    m = parse_manifest({"app": {"name": "sized", "web": "run"}, "instances": {"size": size}})
    app = _container(
        by_kind(render_objects(m, "production", "v1", SHA, STORE, IMAGE), "Deployment")["sized-blue"]
    )
    assert app["resources"] == {"requests": requests, "limits": limits}


def test_unknown_size_is_a_user_error() -> None:
    m = parse_manifest({"app": {"name": "sized", "web": "run"}, "instances": {"size": "t3.nano"}})
    with pytest.raises(UserError) as info:
        render_objects(m, "production", "v1", SHA, STORE, IMAGE)
    assert (
        str(info.value)
        == "instances.size: no Kubernetes resources for size 't3.nano' (use one of small, medium, large)"
    )


@pytest.mark.parametrize(("min_", "expected"), [(0, 1), (1, 1), (2, 1), (3, 2), (10, 9)])
def test_disruption_budget_keeps_all_but_one(min_: int, expected: int) -> None:
    m = parse_manifest({"app": {"name": "pdb", "web": "run"}, "instances": {"min": min_, "max": 20}})
    pdb = by_kind(render_objects(m, "production", "v1", SHA, STORE, IMAGE), "PodDisruptionBudget")["pdb"]
    assert pdb["spec"]["minAvailable"] == expected
    assert "sprout.dev/color" not in pdb["spec"]["selector"]["matchLabels"]


def test_hpa_tracks_cpu_with_bounds_and_stabilization() -> None:
    hpa = by_kind(render("full"), "HorizontalPodAutoscaler")["shop"]["spec"]
    assert hpa["minReplicas"] == 3 and hpa["maxReplicas"] == 12
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    ]
    assert hpa["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 600}


@pytest.mark.parametrize(
    ("metric", "target", "expected"),
    [
        (
            "requests_per_instance",
            50,
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "http_requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "50"},
                },
            },
        ),
        (
            "concurrency",
            2.5,
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "http_requests_in_flight"},
                    "target": {"type": "AverageValue", "averageValue": "2500m"},
                },
            },
        ),
        (
            "p95_latency",
            0.25,
            {
                "type": "Object",
                "object": {
                    "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "mx"},
                    "metric": {"name": "http_request_duration_seconds_p95"},
                    "target": {"type": "Value", "value": "250m"},
                },
            },
        ),
    ],
)
def test_hpa_metric_per_scaling_metric(metric: str, target: float, expected: dict[str, Any]) -> None:
    m = parse_manifest({"app": {"name": "mx", "web": "run"}, "scaling": {"metric": metric, "target": target}})
    objects = render_objects(m, "production", "v1", SHA, STORE, IMAGE)
    assert by_kind(objects, "HorizontalPodAutoscaler")["mx"]["spec"]["metrics"] == [expected]
    assert validate_objects(objects) == []


def test_ingress_routes_router_hosts_to_the_live_service() -> None:
    ingress = by_kind(render("full"), "Ingress")["shop"]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["shop.example.com", "*.example.com"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "shop", "port": {"name": "http"}}}
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/proxy-body-size": "5000000",
        "cert-manager.io/cluster-issuer": "letsencrypt",
    }
    # [tls]: every host served with the certificate cert-manager keeps in the app's TLS Secret.
    assert ingress["spec"]["tls"] == [
        {"hosts": ["shop.example.com", "*.example.com"], "secretName": "shop-tls"}
    ]
    tiny = by_kind(render("minimal"), "Ingress")["tiny"]
    assert [rule["host"] for rule in tiny["spec"]["rules"]] == ["tiny.localhost"]
    assert "tls" not in tiny["spec"]


def test_schedules_become_utc_cron_jobs_that_patch_the_hpa() -> None:
    jobs = by_kind(render("full"), "CronJob")
    # The one-off `at` entry has no CronJob form (render notes say so).
    assert sorted(jobs) == ["shop-schedule-1", "shop-schedule-2"]
    first = jobs["shop-schedule-1"]["spec"]
    assert first["schedule"] == "30 19 * 6 *" and first["timeZone"] == "Etc/UTC"
    pod = first["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "shop-scheduler"
    assert pod["containers"][0]["command"] == [
        "python",
        "-m",
        "sprout.providers.kubernetes.hpapatch",
        "--namespace",
        "shop-production",
        "--hpa",
        "shop",
        "--min",
        "8",
    ]
    second = jobs["shop-schedule-2"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert second["containers"][0]["command"][-4:] == ["--min", "3", "--max", "12"]


def test_rbac_allows_exactly_patch_on_the_one_hpa() -> None:
    objects = render("full")
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    roles = by_kind(objects, "Role")
    assert list(roles) == ["shop-scheduler"]
    assert roles["shop-scheduler"]["rules"] == [
        {
            "apiGroups": ["autoscaling"],
            "resources": ["horizontalpodautoscalers"],
            "resourceNames": ["shop"],
            "verbs": ["patch"],
        }
    ]
    assert by_kind(objects, "HorizontalPodAutoscaler")["shop"]["metadata"]["name"] == "shop"
    binding = by_kind(objects, "RoleBinding")["shop-scheduler"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "shop-scheduler",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "shop-scheduler", "namespace": "shop-production"}
    ]
    # Only the scheduled jobs run as that account; the app pods carry no token at all.
    accounts = {
        job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
        for job in by_kind(objects, "CronJob").values()
    }
    assert accounts == {"shop-scheduler"}
    for deployment in by_kind(objects, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert "serviceAccountName" not in pod and pod["automountServiceAccountToken"] is False


def test_no_schedule_means_no_rbac() -> None:
    kinds = {obj["kind"] for obj in render("microsite")}
    assert kinds.isdisjoint({"ServiceAccount", "Role", "RoleBinding", "CronJob"})


def test_secrets_are_a_reference_to_an_existing_secret() -> None:
    objects = render("full")
    assert by_kind(objects, "Secret") == {}
    app = _container(by_kind(objects, "Deployment")["shop-blue"])
    assert app["envFrom"] == [{"secretRef": {"name": "shop-secrets", "optional": False}}]
    spec = json.loads(by_kind(objects, "ConfigMap")["shop-blue"]["data"]["spec.json"])
    assert spec["secret_names"] == ["SHOP_API_KEY", "SHOP_SIGNING_KEY"]
    named = render("full", secret_name="shop-prod-keys")
    assert (
        _container(by_kind(named, "Deployment")["shop-green"])["envFrom"][0]["secretRef"]["name"]
        == "shop-prod-keys"
    )
    assert "envFrom" not in _container(by_kind(render("microsite"), "Deployment")["microsite-blue"])


def test_no_object_carries_a_secret_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    canary = "canary-7f3a9c1e-do-not-leak"
    monkeypatch.setenv("SHOP_API_KEY", canary)
    (tmp_path / "signing.key").write_text(canary + "-file\n")
    monkeypatch.chdir(tmp_path)
    objects = render("full")
    assert canary not in json.dumps(objects)
    assert canary not in to_yaml(objects)


def test_config_map_holds_the_instance_spec_without_identity() -> None:
    spec = json.loads(by_kind(render("full"), "ConfigMap")["shop-green"]["data"]["spec.json"])
    assert spec == {
        "app": "shop",
        "bundle_sha256": SHA,
        "cache_dir": "/var/lib/sprout/cache",
        "env": "production",
        "env_vars": {
            "DATABASE_URL": "postgres://shop@db.shop.svc:5432/shop",
            "SESSION_STORE_URL": "redis://sessions.shop.svc:6379/0",
            "SHOP_CURRENCY": "EUR",
        },
        "grace": 20.0,
        "health_path": "/healthz",
        "host": "0.0.0.0",
        "install": "pip install -r requirements.txt",
        "install_inputs": ["requirements.txt", "constraints.txt"],
        "instance_id": "",
        "log_file": "/dev/stdout",
        "port": 8080,
        "secret_names": ["SHOP_API_KEY", "SHOP_SIGNING_KEY"],
        "store_url": STORE,
        "version": "v7",
        "web": "uvicorn shop.app:app --host $HOST --port $PORT",
        "zone": "",
    }


def test_a_changed_spec_changes_the_pod_template() -> None:
    def digest(objects: list[dict[str, Any]]) -> str:
        template = by_kind(objects, "Deployment")["shop-blue"]["spec"]["template"]
        value: str = template["metadata"]["annotations"]["sprout.dev/spec-sha256"]
        return value

    m = manifest("full")
    v7 = render_objects(m, "production", "v7", SHA, STORE, IMAGE)
    v8 = render_objects(m, "production", "v8", "6" * 64, STORE, IMAGE)
    assert digest(v7) != digest(v8)
    assert digest(v7) == digest(render("full"))


def test_yaml_is_one_document_per_object() -> None:
    objects = render("lottery")
    assert list(yaml.safe_load_all(to_yaml(objects))) == objects


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"bundle_sha256": "abc"},
            "kubernetes render: bundle hash 'abc' is not a sha256; push the app first",
        ),
        ({"version_label": "latest"}, "kubernetes render: version 'latest' is not a label such as v3"),
        (
            {"namespace": "Shop_NS"},
            "kubernetes render: namespace 'Shop_NS' must be a DNS label "
            "(lowercase letters, digits, dashes; at most 63 characters)",
        ),
        (
            {"store_url": ""},
            "kubernetes render: no artifact store URL; give --store-url (e.g. s3://bucket/app)",
        ),
        ({"image": "my image"}, "kubernetes render: image 'my image' is not an image reference"),
        (
            {"env": "Prod"},
            "kubernetes render: environment name 'Prod' must be 1 to 20 lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit (it becomes a host name and a folder name)",
        ),
    ],
)
def test_bad_render_inputs_are_user_errors(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "env": "production",
        "version_label": "v1",
        "bundle_sha256": SHA,
        "store_url": STORE,
        "image": IMAGE,
        "namespace": None,
    }
    args.update(kwargs)
    with pytest.raises(UserError) as info:
        render_objects(manifest("minimal"), **args)
    assert str(info.value) == message


def test_stage_renders_one_colour_at_a_given_size() -> None:
    m = manifest("full")
    ctx = RenderContext(m, "production", "v8", "6" * 64, STORE, IMAGE, "shop-production", live="blue")
    objects = serialize(stage(ctx, "green", 4))
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in objects] == [
        ("ConfigMap", "shop-green"),
        ("Deployment", "shop-green"),
    ]
    assert objects[1]["spec"]["replicas"] == 4
    assert json.loads(objects[0]["data"]["spec.json"])["version"] == "v8"
    assert validate_objects(objects) == []


def test_yaml_writes_the_spec_as_a_readable_block() -> None:
    text = to_yaml(render("minimal"))
    assert '  spec.json: |-\n    {\n      "app": "tiny",\n' in text

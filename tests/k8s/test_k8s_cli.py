"""`sprout k8s …` as a user runs it: a real `sprout` process, a real state store under a temp SPROUT_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from k8s_helpers import NO_CLUSTER, SHA, app_dir, closed_port, write_kubeconfig

CANARY = "canary-41b7e0d2-never-in-output"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A clean environment: a private SPROUT_HOME and HOME, no kubeconfig, no in-cluster variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SPROUT_", "KUBE")) and key != "HOME"
    }
    env.update(SPROUT_HOME=str(tmp_path / "home"), HOME=str(tmp_path))
    return env


def sprout(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `sprout ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_render_provider_kubernetes_is_k8s_render(environ: dict[str, str], tmp_path: Path) -> None:
    microsite = str(app_dir("microsite"))
    pushed = sprout(environ, "push", microsite, "--store", str(tmp_path / "store"), "--json")
    assert pushed.returncode == 0, pushed.stderr
    via_flag = sprout(environ, "render", microsite, "--provider", "kubernetes", "--env", "prod")
    via_group = sprout(environ, "k8s", "render", microsite, "--env", "prod")
    assert via_flag.returncode == 0, via_flag.stderr
    assert via_flag.stdout == via_group.stdout
    assert "Deployment" in [obj["kind"] for obj in yaml.safe_load_all(via_flag.stdout)]


def test_render_a_pushed_version_as_yaml_and_json(environ: dict[str, str], tmp_path: Path) -> None:
    store = tmp_path / "store"
    microsite = str(app_dir("microsite"))
    pushed = sprout(environ, "push", microsite, "--store", str(store), "--json")
    assert pushed.returncode == 0, pushed.stderr
    sha = json.loads(pushed.stdout)["sha256"]

    done = sprout(environ, "k8s", "render", microsite, "--image", "reg.example/sprout:1")
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    assert [obj["kind"] for obj in objects][:2] == ["Namespace", "ConfigMap"]
    spec = json.loads(objects[1]["data"]["spec.json"])
    assert (spec["version"], spec["bundle_sha256"], spec["store_url"]) == ("v1", sha, f"file://{store}")
    assert "note: artifact store" in done.stderr

    as_json = sprout(environ, "k8s", "render", microsite, "--version", "v1", "-o", "json", "--no-namespace")
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List"
    assert listed["items"][0]["kind"] == "ConfigMap"


def test_render_without_a_version_says_how_to_get_one(environ: dict[str, str]) -> None:
    done = sprout(environ, "k8s", "render", str(app_dir("minimal")))
    assert done.returncode == 2
    assert (
        "error: k8s: no pushed version of tiny; run `sprout push --store s3://bucket/tiny` first"
        in done.stderr
    )


def test_validate_reports_zero_errors_and_secrets_never_leak(environ: dict[str, str]) -> None:
    environ["LOTTERY_ADMIN_TOKEN"] = CANARY
    common = ["--bundle-sha256", SHA, "--store-url", "s3://b/lottery", "--version", "v2"]
    done = sprout(environ, "k8s", "validate", str(app_dir("lottery")), *common)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("objects valid for Kubernetes 1.33 (strict schemas, 0 errors)\n")
    rendered = sprout(environ, "k8s", "render", str(app_dir("lottery")), *common)
    assert rendered.returncode == 0, rendered.stderr
    assert CANARY not in rendered.stdout + rendered.stderr

    too_new = sprout(
        environ, "k8s", "validate", str(app_dir("lottery")), *common, "--kubernetes-version", "2.0"
    )
    assert too_new.returncode == 2
    assert "error: kubernetes validate: no schemas for Kubernetes '2.0' (choose 1.25 to" in too_new.stderr


def test_apply_without_a_cluster_fails_clearly(environ: dict[str, str]) -> None:
    common = ["--bundle-sha256", SHA, "--store-url", "s3://b/tiny", "--version", "v1"]
    done = sprout(environ, "k8s", "apply", str(app_dir("minimal")), *common)
    assert done.returncode == 2
    assert done.stderr == f"error: {NO_CLUSTER}\n"
    assert done.stdout == ""


def test_diff_against_an_unreachable_cluster_fails_clearly(environ: dict[str, str], tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{closed_port()}"
    config = write_kubeconfig(tmp_path / "kubeconfig", server)
    common = ["--bundle-sha256", SHA, "--store-url", "s3://b/tiny", "--version", "v1"]
    done = sprout(environ, "k8s", "diff", str(app_dir("minimal")), *common, "--kubeconfig", str(config))
    assert done.returncode == 4
    assert f"error: kubernetes: the cluster at {server} is not reachable" in done.stderr


def test_bundle_needs_store_and_version(environ: dict[str, str]) -> None:
    done = sprout(environ, "k8s", "render", str(app_dir("minimal")), "--bundle-sha256", SHA)
    assert done.returncode == 2
    assert done.stderr == (
        "error: k8s: --bundle-sha256 needs --store-url and --version too (e.g. --version v3)\n"
    )


def test_replicas_only_with_stage(environ: dict[str, str]) -> None:
    common = ["--bundle-sha256", SHA, "--store-url", "s3://b/tiny", "--version", "v1"]
    done = sprout(environ, "k8s", "render", str(app_dir("minimal")), *common, "--replicas", "3")
    assert done.returncode == 2
    assert done.stderr == "error: k8s render: --replicas only applies with --stage blue|green\n"
    staged = sprout(environ, "k8s", "render", str(app_dir("minimal")), *common, "--stage", "green")
    assert staged.returncode == 0, staged.stderr
    kinds = [
        (obj["kind"], obj["spec"].get("replicas"))
        for obj in yaml.safe_load_all(staged.stdout)
        if "spec" in obj
    ]
    assert kinds == [("Deployment", 2)]


@pytest.mark.parametrize("command", ["deploy", "rollback"])
def test_releases_without_a_cluster_fail_clearly(environ: dict[str, str], command: str) -> None:
    extra = (
        ["--bundle-sha256", SHA, "--store-url", "s3://b/tiny", "--version", "v1", "--strategy", "bluegreen"]
        if command == "deploy"
        else []
    )
    done = sprout(environ, "k8s", command, str(app_dir("minimal")), *extra)
    assert done.returncode == 2
    assert done.stderr == f"error: {NO_CLUSTER}\n"


def test_the_manifest_kubernetes_section_sets_image_namespace_and_secret(
    environ: dict[str, str], tmp_path: Path
) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / "app.py").write_text("print('hi')\n")
    (app / "sprout.toml").write_text(
        '[app]\nname = "shop"\nweb = "python app.py"\n'
        '[secrets]\nSTRIPE_KEY = { env = "STRIPE_KEY" }\n'
        '[kubernetes]\nimage = "reg.example/sprout:2"\nnamespace = "shop-{env}"\nsecret_name = "shop-keys"\n'
    )
    pushed = sprout(environ, "push", str(app), "--store", str(tmp_path / "store"))
    assert pushed.returncode == 0, pushed.stderr

    def render(*args: str) -> list[dict[str, object]]:
        done = sprout(environ, "k8s", "render", str(app), "-o", "json", *args)
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout)["items"])

    def values(node: object, key: str) -> set[str]:
        """Every value under `key` anywhere in the objects (as strings, or a secretRef's name)."""
        found: set[str] = set()
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key:
                    found.add(str(v["name"]) if isinstance(v, dict) else str(v))
                found |= values(v, key)
        elif isinstance(node, list):
            for item in node:
                found |= values(item, key)
        return found

    def facts(objects: list[dict[str, object]]) -> tuple[set[str], set[str], set[str]]:
        return values(objects, "namespace"), values(objects, "image"), values(objects, "secretRef")

    assert facts(render("--env", "staging")) == ({"shop-staging"}, {"reg.example/sprout:2"}, {"shop-keys"})
    overridden = render(
        "--namespace", "other", "--image", "reg.example/sprout:3", "--secret-name", "other-keys"
    )
    assert facts(overridden) == ({"other"}, {"reg.example/sprout:3"}, {"other-keys"})


def test_deploy_refuses_a_strategy_kubernetes_cannot_do(environ: dict[str, str], tmp_path: Path) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / "sprout.toml").write_text(
        '[app]\nname = "shop"\nweb = "python app.py"\n[deploy]\nstrategy = "canary"\n'
    )
    done = sprout(
        environ,
        "k8s",
        "deploy",
        str(app),
        "--bundle-sha256",
        SHA,
        "--store-url",
        "s3://b/shop",
        "--version",
        "v1",
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: --strategy canary: Kubernetes switches a Service's selector from one colour to the other "
        "and cannot split traffic by weight; use bluegreen\n"
    )


@pytest.mark.parametrize("release", ["", 'release = "python migrate.py"\n'])
def test_deploy_never_turns_the_default_strategy_or_a_release_command_into_something_else(
    environ: dict[str, str], tmp_path: Path, release: str
) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / "sprout.toml").write_text(f'[app]\nname = "shop"\nweb = "python app.py"\n{release}')
    given = ["--bundle-sha256", SHA, "--store-url", "s3://b/shop", "--version", "v1"]
    done = sprout(environ, "k8s", "deploy", str(app), *given)
    assert done.returncode == 2
    assert done.stderr == (
        "error: k8s deploy: shop's manifest sets no [deploy] strategy, and its default (rolling) needs "
        "traffic split by weight, which a Service selecting one colour cannot do; pass --strategy "
        'bluegreen or set [deploy] strategy = "bluegreen"\n'
    )
    chosen = sprout(environ, "k8s", "deploy", str(app), *given, "--strategy", "bluegreen")
    assert chosen.returncode == 2
    if release:
        # Refused before the cluster is reached: the release phase needs a one-off Job.
        assert chosen.stderr == (
            "error: kubernetes: the release command `python migrate.py` needs a one-off Job, which Sprout "
            "does not create yet; run it with `kubectl run` and deploy a manifest without [app] release\n"
        )
    else:
        assert chosen.stderr == f"error: {NO_CLUSTER}\n"

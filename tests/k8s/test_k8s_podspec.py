"""The init container's spec writer, run as the pod runs it, and read back by the agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_helpers import by_kind, render

from sprout.agent.main import load_spec
from sprout.providers.kubernetes.podspec import UNKNOWN_ZONE, personalise


def _template(tmp_path: Path) -> Path:
    config_map = by_kind(render("full"), "ConfigMap")["shop-blue"]
    path = tmp_path / "config" / "spec.json"
    path.parent.mkdir()
    path.write_text(config_map["data"]["spec.json"])
    return path


def _run(template: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SPROUT_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "sprout.providers.kubernetes.podspec", str(template), str(out)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_container_writes_the_pods_own_spec(tmp_path: Path) -> None:
    out = tmp_path / "etc" / "spec.json"
    done = _run(_template(tmp_path), out, SPROUT_INSTANCE="shop-blue-7d9f-x2k4q", SPROUT_ZONE="eu-central-1b")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout == "sprout podspec: shop-blue-7d9f-x2k4q in zone eu-central-1b runs shop/production v7\n"
    )
    spec = load_spec(str(out))
    assert spec.instance_id == "shop-blue-7d9f-x2k4q"
    assert spec.zone == "eu-central-1b"
    assert spec.secret_names == ("SHOP_API_KEY", "SHOP_SIGNING_KEY")
    assert out.stat().st_mode & 0o777 == 0o600


def test_zone_label_missing_reads_unknown(tmp_path: Path) -> None:
    out = tmp_path / "spec.json"
    # The downward API gives an empty string for a label the pod does not carry.
    done = _run(_template(tmp_path), out, SPROUT_INSTANCE="shop-blue-1", SPROUT_ZONE="")
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["zone"] == UNKNOWN_ZONE


def test_without_a_pod_name_the_init_container_fails(tmp_path: Path) -> None:
    template = _template(tmp_path)
    done = _run(template, tmp_path / "spec.json")
    assert done.returncode == 2
    assert done.stderr == (
        f"sprout podspec: cannot write {tmp_path / 'spec.json'} from {template}: "
        "SPROUT_INSTANCE is not set (the pod's downward API env supplies the pod name)\n"
    )


def test_usage_error() -> None:
    done = _run(Path("only-one"), Path(""))
    assert done.returncode == 2


def test_personalise_keeps_everything_else() -> None:
    template = {
        "instance_id": "",
        "zone": "",
        "app": "a",
        "env": "e",
        "version": "v1",
        "bundle_sha256": "0" * 64,
    }
    template |= {"store_url": "s3://b/a", "host": "0.0.0.0", "port": 8080, "web": "run", "install": None}
    template |= {"health_path": "/", "log_file": "/dev/stdout", "cache_dir": "/c"}
    spec = personalise(template, {"SPROUT_INSTANCE": "a-blue-1", "SPROUT_ZONE": "z1"})
    assert (spec.instance_id, spec.zone, spec.port, spec.web) == ("a-blue-1", "z1", 8080, "run")
    with pytest.raises(ValueError):
        personalise(template, {})

"""Shared test helpers for the kubernetes provider: manifests to render, fixed render inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loopback import free_port
from sprout.providers.kubernetes.render import render as render_objects
from sprout.spec import Manifest, load_manifest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
SHA = "5" * 64
STORE = "s3://sprout-bundles/shop"
IMAGE = "registry.example.com/sprout:0.1.0-python3.11-slim"
#: microsite and lottery are the examples; minimal (two lines) and full live under tests/k8s/data.
APPS = ["microsite", "lottery", "minimal", "full"]


def app_dir(name: str) -> Path:
    """An example app (examples/<name>) when it exists, else the manifest under tests/k8s/data."""
    example = ROOT / "examples" / name
    if name == "lottery" and not (example / "sprout.toml").exists():
        example = ROOT / "examples" / "hello"
    return example if (example / "sprout.toml").exists() else DATA / name


def manifest(name: str) -> Manifest:
    """The manifest of an app named like `app_dir`."""
    return load_manifest(app_dir(name) / "sprout.toml")


def render(name: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The objects of an app with the fixed test inputs."""
    return render_objects(manifest(name), "production", "v7", SHA, STORE, IMAGE, **kwargs)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of one kind by name."""
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def regenerate() -> bool:
    """Whether golden files are being rewritten (SPROUT_UPDATE_GOLDEN=1)."""
    return os.environ.get("SPROUT_UPDATE_GOLDEN") == "1"


NO_CLUSTER = (
    "kubernetes: no cluster configured (no --kubeconfig, no $KUBECONFIG file, no ~/.kube/config, "
    "not running in a pod); point --kubeconfig at a cluster's kubeconfig, or use "
    "`sprout k8s render` to write the objects for kubectl"
)


def closed_port() -> int:
    """A loopback port nothing listens on (leased, so nothing will)."""
    return free_port()


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig for one cluster at `server` with a token user."""
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster: {{server: '{server}', insecure-skip-tls-verify: true}}\n"
        "users:\n- name: u\n  user: {token: not-a-real-token}\n"
        "contexts:\n- name: ctx\n  context: {cluster: c, user: u}\n"
        "current-context: ctx\n"
    )
    return path

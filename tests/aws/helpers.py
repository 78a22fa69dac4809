"""Shared test helpers for the aws provider: manifests to render, fixed render inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sprout.providers.aws import render_template
from sprout.providers.aws.wheels import Runtime
from sprout.spec import Manifest, load_manifest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
SHA = "5" * 64
BUCKET = "sprout-123456789012-eu-central-1"
VERSION = "0.0.0-test"
#: A fixed Sprout wheel and wheelhouse, so renders (and the golden files) do not change with the code.
RUNTIME = Runtime(
    python="python3.11",
    wheel_key=f"sprout/{'6' * 64}/sprout_deploy-0.0.0-py3-none-any.whl",
    wheel_sha256="6" * 64,
    wheelhouse_key=f"sprout/{'7' * 64}/wheelhouse.tar",
    wheelhouse_sha256="7" * 64,
)


def app_dir(name: str) -> Path:
    """An example app (examples/<name>) when it exists, else the mirror under tests/aws/data."""
    example = ROOT / "examples" / name
    return example if (example / "sprout.toml").exists() else DATA / name


def manifest(name: str) -> Manifest:
    """The manifest of an app named like `app_dir`."""
    return load_manifest(app_dir(name) / "sprout.toml")


def render(name: str, **kwargs: Any) -> dict[str, Any]:
    """The template of an app with the fixed test inputs."""
    return render_template(manifest(name), "prod", SHA, BUCKET, VERSION, RUNTIME, **kwargs)


def regenerate() -> bool:
    """Whether golden files are being rewritten (SPROUT_UPDATE_GOLDEN=1)."""
    return os.environ.get("SPROUT_UPDATE_GOLDEN") == "1"

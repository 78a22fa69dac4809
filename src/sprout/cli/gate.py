"""The test gate of a foreground release (`sprout aws deploy`, `sprout k8s deploy`), run on this machine."""

from __future__ import annotations

import os

import typer

from sprout.deploy.gate import GateResult, run_test_gate
from sprout.paths import Home
from sprout.spec.models import Manifest


def gate_here(app: str, label: str, sha256: str, store_url: str, manifest: Manifest) -> GateResult:
    """The version's own tests against its bundle, on this machine; a pass is printed, a failure returned."""
    home = Home.from_env().ensure()
    result = run_test_gate(
        app=app,
        version=label,
        sha256=sha256,
        store_url=store_url,
        cache_dir=home.cache,
        manifest=manifest,
        environ=os.environ,
        log_path=home.logs / f"test-{app}-{label}.log",
    )
    if result.passed:
        typer.echo(f"test gate: {result.skipped or f'passed in {result.seconds:.1f}s'}")
    return result

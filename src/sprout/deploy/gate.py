"""The test gate: a version's own `test` command runs against its real bundle before it may deploy.

It runs as a one-off (`deploy/oneoff.py`): the bundle bootstrapped exactly as an instance would be,
so the tests see the code and dependencies production will, and the instances launched afterwards
find the cache ready; the tests run in a throw-away copy with a SQLite database and session store of
their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sprout.deploy.oneoff import run_oneoff
from sprout.spec.models import Manifest


@dataclass(frozen=True)
class GateResult:
    """How a version's tests went."""

    passed: bool
    seconds: float
    code: int | None = None
    tail: tuple[str, ...] = ()
    skipped: str | None = None


def run_test_gate(
    *,
    app: str,
    version: str,
    sha256: str,
    store_url: str,
    cache_dir: Path,
    manifest: Manifest,
    environ: Mapping[str, str],
    emit: Callable[[str, str], None] | None = None,
) -> GateResult:
    """Run the version's `[app] test` command in an isolated copy of its bundle; passed when it exits 0."""
    command = manifest.app.test
    if not command:
        return GateResult(passed=True, seconds=0.0, skipped="the manifest has no [app] test command")
    result = run_oneoff(
        command,
        sha256=sha256,
        store_url=store_url,
        cache_dir=cache_dir,
        install=manifest.app.install,
        install_inputs=manifest.app.install_inputs,
        environ=environ,
        env_vars={**manifest.env, "SPROUT_APP": app, "SPROUT_ENV": "test", "SPROUT_VERSION": version},
        emit=emit,
        scratch_vars=lambda scratch: {
            "DATABASE_URL": f"sqlite:///{scratch}/test.sqlite3",
            "SESSION_STORE_URL": f"sqlite:///{scratch}/sessions.sqlite3",
        },
    )
    return GateResult(passed=result.ok, seconds=result.seconds, code=result.code, tail=result.tail)

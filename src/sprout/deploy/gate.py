"""The test gate: a version's own `test` command runs against its unpacked bundle before it may deploy.

The bundle is bootstrapped exactly as an instance would (`agent.bootstrap.prepare`: fetch, verify, unpack,
install into the per-hash virtualenv), so the tests see the same code and dependencies production will,
and the instances launched afterwards find the cache ready. The tests run in a throw-away copy of the
unpacked folder, so whatever they write never reaches the folder instances serve from, with a SQLite
database and session store of their own.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sprout.agent.bootstrap import prepare, run_command
from sprout.agent.cache import cache_root
from sprout.agent.env import base_env
from sprout.spec.models import Manifest

#: Lines of the test output kept for the report when the gate fails.
TAIL_LINES = 40


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
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def keep(stream: str, line: str) -> None:
        tail.append(line if stream != "system" else f"[sprout] {line}")
        if emit is not None:
            emit(stream, line)

    venv = Path(cache_root(str(cache_dir), sha256)) / "venv"
    install_env = base_env(environ, str(venv))
    install_env.update(manifest.env)
    prepared = prepare(
        sha256=sha256,
        store_url=store_url,
        cache_dir=cache_dir,
        install=manifest.app.install,
        install_env=install_env,
        emit=keep,
    )
    with tempfile.TemporaryDirectory(prefix=f"sprout-test-{app}-{version}-") as scratch:
        workdir = Path(scratch) / "app"
        shutil.copytree(prepared.app_dir, workdir, symlinks=False)
        env = base_env(environ, prepared.venv)
        env.update(manifest.env)
        env.update(
            {
                "SPROUT_APP": app,
                "SPROUT_ENV": "test",
                "SPROUT_VERSION": version,
                "DATABASE_URL": f"sqlite:///{scratch}/test.sqlite3",
                "SESSION_STORE_URL": f"sqlite:///{scratch}/sessions.sqlite3",
            }
        )
        keep("system", f"test gate: {command}")
        code = run_command(command, cwd=workdir, env=env, emit=keep)
    seconds = round(time.monotonic() - started, 3)
    return GateResult(passed=code == 0, seconds=seconds, code=code, tail=tuple(tail))

"""The test gate: a version's own `test` command runs against its real bundle before it may deploy.

It runs as a one-off (`deploy/oneoff.py`): the bundle bootstrapped exactly as an instance would be,
so the tests see the code and dependencies production will, and the instances launched afterwards
find the cache ready; the tests run in a throw-away copy with a session store of their own and, by
`[deploy] test_database`, a SQLite file of their own or a scratch database created on the app's
MySQL/PostgreSQL server (so a behaviour only that engine has is gated) and dropped after. The whole run (bootstrap and install output included) goes to a log file; a failure reports
the test command's own last lines, which is what a person needs first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sprout.deploy.oneoff import TAIL_LINES, run_oneoff
from sprout.errors import TestsFailed, UserError
from sprout.services.database import scratch_database
from sprout.spec.models import Manifest


@dataclass(frozen=True)
class GateResult:
    """How a version's tests went."""

    passed: bool
    seconds: float
    code: int | None = None
    tail: tuple[str, ...] = ()
    """The test command's own last lines (not the bootstrap's)."""
    skipped: str | None = None
    log: Path | None = None
    """Where the whole run's output is, bootstrap and install included."""


def blocked(app: str, version: str, command: str | None, gate: GateResult) -> tuple[str, TestsFailed]:
    """A failed gate as the history records it ("blocked by tests: …") and as the error the user sees."""
    why = f"`{command}` exited {gate.code} after {gate.seconds:.1f}s"
    tail = "\n".join(f"  {line}" for line in gate.tail)
    return f"blocked by tests: {why}; not deployed (log: {gate.log})", TestsFailed(
        f"{app} {version}: the app's tests failed ({why}); not deployed. Their last lines:\n{tail}\n"
        f"The whole run, install output included: {gate.log}"
    )


def run_test_gate(
    *,
    app: str,
    version: str,
    sha256: str,
    store_url: str,
    cache_dir: Path,
    manifest: Manifest,
    environ: Mapping[str, str],
    log_path: Path | None = None,
    emit: Callable[[str, str], None] | None = None,
    server_url: str | None = None,
) -> GateResult:
    """Run the version's `[app] test` command in an isolated copy of its bundle; passed when it exits 0.
    Its whole output goes to `log_path` when given; `server_url`: the app's database URL, on whose
    server a scratch database is made when the manifest's `test_database` is "scratch"."""
    command = manifest.app.test
    if not command:
        return GateResult(passed=True, seconds=0.0, skipped="the manifest has no [app] test command")
    tests_tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = False
    log = log_path.open("w", encoding="utf-8") if log_path is not None else None

    def keep(stream: str, line: str) -> None:
        nonlocal started
        if log is not None:
            log.write(f"{stream}: {line}\n")
        if started:
            tests_tail.append(line if stream != "system" else f"[sprout] {line}")
        # The one-off announces the command once the bundle is ready: what follows is the tests' own.
        started = started or (stream == "system" and line == f"running: {command}")
        if emit is not None:
            emit(stream, line)

    try:
        with _test_database(manifest, server_url) as database:
            result = run_oneoff(
                command,
                sha256=sha256,
                store_url=store_url,
                cache_dir=cache_dir,
                install=manifest.app.install,
                install_inputs=manifest.app.install_inputs,
                environ=environ,
                env_vars={**manifest.env, "SPROUT_APP": app, "SPROUT_ENV": "test", "SPROUT_VERSION": version},
                emit=keep,
                scratch_vars=lambda scratch: {
                    "DATABASE_URL": database or f"sqlite:///{scratch}/test.sqlite3",
                    "SESSION_STORE_URL": f"sqlite:///{scratch}/sessions.sqlite3",
                },
            )
    finally:
        if log is not None:
            log.close()
    return GateResult(
        passed=result.ok,
        seconds=result.seconds,
        code=result.code,
        tail=tuple(tests_tail) if started else result.tail,
        log=log_path,
    )


@contextmanager
def _test_database(manifest: Manifest, server_url: str | None) -> Iterator[str | None]:
    """The scratch server database the tests get, or None for a SQLite file in their scratch folder."""
    if manifest.deploy.test_database != "scratch":
        yield None
        return
    if server_url is None:
        raise UserError(
            f'{manifest.app.name}: deploy.test_database = "scratch" but no database server URL is known; '
            "set [resources.database] url"
        )
    with scratch_database(server_url) as url:
        yield url

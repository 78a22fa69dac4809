"""The agent's story: read the spec, bootstrap the bundle, run the app, exit with the app.

An instance is this process. It reads its spec (the user data, an `InstanceSpec` file), makes sure the bundle is
fetched, verified, unpacked and installed in the per-version cache (`bootstrap.prepare`), then runs the
app's `web` command with the contract environment under a `Supervisor` until the app exits. Every step
is a `system` line in the instance's log; a bootstrap failure is logged and the agent exits non-zero,
so the control plane replaces the instance as an Auto Scaling Group would.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from sprout.agent.appuser import INSTANCES, AppUser, ensure_user
from sprout.agent.cache import Prepared, cached
from sprout.agent.env import app_env, missing_secrets
from sprout.agent.logfile import InstanceLog
from sprout.agent.spec import AgentSpec
from sprout.agent.supervise import Supervisor
from sprout.errors import SproutError, UserError

#: Exit status of an agent whose bootstrap failed (the app never ran).
BOOTSTRAP_FAILED = 70
#: Exit status of an agent stopped before its app started.
STOPPED_EARLY = 143


class _StoppedDuringBootstrap(Exception):
    """A stop signal arrived before the app was started."""


def load_spec(path: str) -> AgentSpec:
    """The instance spec in the JSON file `path`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path}: not a readable instance spec ({exc}); the provider writes it at launch"
        ) from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: not an instance spec (a JSON object); the provider writes it at launch")
    return AgentSpec(data, path)


def run_agent(spec: AgentSpec, environ: Mapping[str, str]) -> int:
    """Bootstrap and run one instance to the end; return the agent's exit status."""
    log = InstanceLog(spec)
    try:
        return _run(spec, environ, log)
    finally:
        log.close()


def _run(spec: AgentSpec, environ: Mapping[str, str], log: InstanceLog) -> int:
    started = time.monotonic()
    supervisor: Supervisor | None = None
    bootstrapping = True
    pending: int | None = None

    def on_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal pending
        if supervisor is not None:
            supervisor.stop(signum)
        elif bootstrapping:
            raise _StoppedDuringBootstrap(signal.Signals(signum).name)
        else:
            pending = signum

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    log.emit(
        "system",
        f"agent started (pid {os.getpid()}): instance {spec.instance_id}, {spec.app}/{spec.env} "
        f"{spec.version}, zone {spec.zone}, {spec.host}:{spec.port}",
    )
    prepared = cached(spec.cache_dir, spec.bundle_sha256)
    if prepared is None:
        # A bootstrap takes seconds and its progress should be readable as it happens.
        log.start_writing()
    try:
        missing = missing_secrets(spec, environ)
        if missing:
            raise UserError(
                f"secrets {', '.join(missing)} are not in the agent's environment; the control plane "
                "resolves [secrets] before launching, so check their sources and launch again"
            )
        if prepared is None:
            prepared = _bootstrap(spec, environ, log)
        user = _app_user(spec, log)
        own = _own_folders(spec, user)
        # From here a stop signal is kept for the supervisor instead of interrupting (see on_stop).
        bootstrapping = False
    except _StoppedDuringBootstrap as stop:
        log.emit("system", f"received {stop}: stopped during bootstrap, the app never started")
        return STOPPED_EARLY
    except (SproutError, OSError) as exc:
        log.emit("system", f"bootstrap failed: {exc}")
        return BOOTSTRAP_FAILED
    source = "cache" if prepared.cached else "a fresh bootstrap"
    log.emit("system", f"bundle ready from {source} in {time.monotonic() - started:.3f}s")
    env = app_env(spec, environ, prepared.venv)
    if user is not None:
        env.update(HOME=user.home, USER=user.name, LOGNAME=user.name, TMPDIR=user.home)
    env.update(own)
    supervisor = Supervisor(
        spec.web,
        cwd=prepared.app_dir,
        env=env,
        grace=spec.grace,
        emit=log.emit,
        user=(user.uid, user.gid) if user is not None else None,
    )
    if pending is not None:
        supervisor.stop(pending)
    try:
        supervisor.start()
    except OSError as exc:
        log.emit("system", f"cannot start the web command: {exc}")
        return BOOTSTRAP_FAILED
    # The app boots while the log format loads: on a cached start this is most of the agent's own cost.
    log.start_writing()
    status = supervisor.wait()
    log.emit("system", f"agent exiting with status {status}")
    return status


def _own_folders(spec: AgentSpec, user: AppUser | None) -> dict[str, str]:
    """HOME and TMPDIR of this instance alone, made if missing; none when the spec names no instance folder."""
    if spec.instance_dir is None:
        return {}
    # Apps keep sockets, caches and lock files in HOME and TMPDIR (gunicorn's control socket): instances
    # sharing the agent's would collide. An app user cannot enter the Sprout home: its instance's folders
    # are then in the user's own folder (housekeeping removes them with the instance's).
    base = spec.instance_dir if user is None else os.path.join(user.home, INSTANCES, spec.instance_id)
    own = {"HOME": os.path.join(base, "home"), "TMPDIR": os.path.join(base, "tmp")}
    for path in own.values():
        os.makedirs(path, mode=0o700, exist_ok=True)
        if user is not None:
            for folder in (os.path.dirname(base), base, path):
                os.chown(folder, user.uid, user.gid)
    return own


def _app_user(spec: AgentSpec, log: InstanceLog) -> AppUser | None:
    """The user the spec says the app runs as, created if missing; None: the agent's own user."""
    if spec.run_as is None:
        return None
    user = ensure_user(spec.run_as, spec.cache_dir)
    log.emit("system", f"the app runs as user {user.name} (uid {user.uid})")
    return user


def _bootstrap(spec: AgentSpec, environ: Mapping[str, str], log: InstanceLog) -> Prepared:
    """Fetch, verify, unpack and install the spec's bundle (or wait for another instance doing it)."""
    from pathlib import Path

    from sprout.agent.bootstrap import prepare

    return prepare(
        sha256=spec.bundle_sha256,
        store_url=spec.store_url,
        cache_dir=Path(spec.cache_dir),
        install=spec.install,
        install_inputs=spec.install_inputs,
        environ=environ,
        env_vars=spec.env_vars,
        emit=log.emit,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sprout.agent --spec FILE`: the lean entry point the local provider starts."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "--spec":
        spec_path = args[1]
    else:
        # argparse only for help and usage errors: the provider's exact call never pays for it.
        import argparse

        parser = argparse.ArgumentParser(
            prog="sprout agent", description="Bootstrap and supervise one instance."
        )
        parser.add_argument("--spec", required=True, help="the instance spec JSON file")
        spec_path = parser.parse_args(args).spec
    try:
        spec = load_spec(spec_path)
    except SproutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return run_agent(spec, os.environ)

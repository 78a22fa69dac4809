"""The release phase of `sprout up`: a version's `release` command (migrations) runs once, before any of
its instances starts; when it fails, nothing is applied.

It runs like a one-off dyno (`sprout.deploy.oneoff`): the bundle bootstrapped as an instance would, the
command in a throw-away copy, with the instance's DATABASE_URL, SESSION_STORE_URL, `[env]` and secrets.
Its output goes to `logs/release-<app>-<env>-<version>.log`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from sprout.agent.appuser import user_name
from sprout.bundle import FolderStore
from sprout.controlplane.resources import Resources
from sprout.deploy.oneoff import run_oneoff
from sprout.errors import ServiceError
from sprout.paths import Home
from sprout.spec import Manifest
from sprout.state import StateStore, Version

#: Lines of the command's output quoted when it fails.
QUOTED_LINES = 15


def run_release_phase(
    home: Home,
    store: StateStore,
    resources: Resources,
    env: str,
    version: Version,
    manifest: Manifest,
    secrets: Mapping[str, str],
    stop: threading.Event | None = None,
) -> bool:
    """Run `version`'s release command for `env` (settings from `manifest`); False when it has none.
    `stop`: set when the release ended meanwhile or the daemon stops; the command is then killed."""
    command = version.manifest.app.release
    if not command:
        return False
    app = version.app
    secrets = dict(secrets)
    env_vars = {
        **version.manifest.env,
        **resources.instance_env(app, env, manifest, secrets),
        **secrets,
        "SPROUT_APP": app,
        "SPROUT_ENV": env,
        "SPROUT_VERSION": version.label,
    }
    log_path = home.logs / f"release-{app}-{env}-{version.label}.log"
    with log_path.open("a", encoding="utf-8") as log:

        def emit(stream: str, line: str) -> None:
            log.write(f"{stream}: {line}\n")

        result = run_oneoff(
            command,
            sha256=version.sha256,
            store_url=version.store_url or FolderStore(home.artifacts).url,
            cache_dir=home.cache,
            install=version.manifest.app.install,
            install_inputs=version.manifest.app.install_inputs,
            environ=os.environ,
            env_vars=env_vars,
            emit=emit,
            # Like its instances, an app's release command never runs as root.
            run_as=user_name(app) if os.geteuid() == 0 else None,
            stop=stop,
        )
    if stop is not None and stop.is_set():
        store.record_event(
            app,
            env,
            "release.phase",
            f"{version.label}: `{command}` killed after {result.seconds:.1f}s",
        )
        raise ServiceError(f"{app}/{env}: release command `{command}` of {version.label} killed")
    store.record_event(
        app,
        env,
        "release.phase",
        f"{version.label}: `{command}` exited {result.code} in {result.seconds:.1f}s",
    )
    if not result.ok:
        tail = "\n".join(result.tail[-QUOTED_LINES:])
        raise ServiceError(
            f"{app}/{env}: release command `{command}` of {version.label} exited with code {result.code}; "
            f"nothing was applied (log: {log_path}):\n{tail}"
        )
    return True

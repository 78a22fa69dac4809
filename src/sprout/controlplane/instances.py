"""Launching one instance: its spec (like cloud user data), its record in the state store, its secrets.

Secrets reach only the provider's launch call (and so the agent's own environment): they are never in
the spec file, the state store, an event or a log line. Their values come from what `sprout up` sent
(kept in this process's memory only) or, after a daemon restart, from the daemon's environment and the
app folder's secret files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from sprout.agent.appuser import user_name
from sprout.bundle import FolderStore
from sprout.controlplane.resources import Resources
from sprout.errors import NotFoundError, ServiceError, SproutError
from sprout.paths import Home
from sprout.ports import PortBook, instance_owner
from sprout.providers.base import InstanceSpec, Provider
from sprout.spec import resolve_secrets, secret_keys
from sprout.state import Environment, Instance, StateStore, new_instance_id

HOST = "127.0.0.1"
#: Seconds the agent gives its app between SIGTERM and SIGKILL.
APP_STOP_GRACE = 10.0


class SecretBook:
    """Secret values per environment, in memory only; resolved from the environment when not given."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ
        self._given: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def remember(self, env_id: str, values: Mapping[str, str]) -> None:
        """Keep the values `sprout up` sent for an environment."""
        with self._lock:
            self._given[env_id] = dict(values)

    def forget(self, env_id: str) -> None:
        """Drop an environment's values (it was torn down)."""
        with self._lock:
            self._given.pop(env_id, None)

    def values(self, env: Environment) -> dict[str, str]:
        """The secrets of an environment's manifest: given values first, else read now."""
        wanted = secret_keys(env.manifest)
        with self._lock:
            given = self._given.get(env.id, {})
        if all(name in given for name in wanted):
            return {name: given[name] for name in wanted}
        return resolve_secrets(env.manifest, env.app_dir, self._environ)


class InstanceLauncher:
    """Builds an instance's spec, records it, and asks the provider to start it."""

    def __init__(
        self, home: Home, store: StateStore, provider: Provider, resources: Resources, secrets: SecretBook
    ) -> None:
        self._home = home
        self._store = store
        self._provider = provider
        self._resources = resources
        self._secrets = secrets
        self._ports = PortBook.of(home)

    def launch(self, env: Environment, version_label: str, zone: str, group: str) -> Instance:
        """Start one instance of `version_label` in `zone` for `group`; recorded before the process exists."""
        version = self._store.get_version(env.app, version_label)
        if version is None:
            raise NotFoundError(f"{env.app} {version_label}: no such version (push it with `sprout push`)")
        # What runs is the version's own (its command, install, [env]); where it runs is the environment's.
        manifest = version.manifest
        secrets = self._secrets.values(env)
        resources = self._resources.instance_env(env.app, env.name, env.manifest, secrets, zone)
        env_vars = {**manifest.env, **resources}
        instance_id = new_instance_id()
        # Leased to this process until the provider hands it to the instance's own process.
        owner = instance_owner(instance_id)
        port = self._ports.lease(owner, HOST)
        # Recorded first: a daemon that dies right after the launch still knows the process it started.
        instance = self._store.add_instance(
            env.app,
            env.name,
            version_label,
            zone,
            HOST,
            port,
            instance_id=instance_id,
            group_name=group,
        )
        spec = InstanceSpec(
            instance_id=instance.id,
            app=env.app,
            env=env.name,
            version=version_label,
            bundle_sha256=version.sha256,
            store_url=version.store_url or FolderStore(self._home.artifacts).url,
            zone=zone,
            host=HOST,
            port=port,
            web=manifest.app.web,
            install=manifest.app.install,
            install_inputs=manifest.app.install_inputs,
            health_path=manifest.health.path,
            log_file=str(self._home.instance_dir(instance.id) / "app.log"),
            cache_dir=str(self._home.cache),
            grace=APP_STOP_GRACE,
            env_vars=env_vars,
            secret_names=tuple(sorted(secrets)),
            # Root runs no app as itself: each app gets a user of its own (see sprout.agent.appuser).
            run_as=user_name(env.app) if os.geteuid() == 0 else None,
            instance_dir=str(self._home.instance_dir(instance.id)),
        )
        try:
            process = self._provider.launch(spec, secrets)
        except (SproutError, OSError) as exc:
            self._ports.release(port, owner)
            self._store.update_instance(instance.id, state="failed")
            raise ServiceError(f"instance {instance.id}: launch failed: {exc}") from exc
        instance = self._store.update_instance(instance.id, pid=process.pid, started_at=process.started_at)
        self._store.record_event(
            env.app,
            env.name,
            "instance.launch",
            f"launched {instance.id} ({version_label}) in zone {zone} on {HOST}:{port}, pid {process.pid}",
            instance=instance.id,
            zone=zone,
            version=version_label,
        )
        return instance

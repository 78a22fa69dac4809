"""What the API asks of the control plane: status, apply, down, logs, events, shutdown.

Mutations take the reconciler's lock, so an API call and a reconcile pass never interleave: `down`
deletes the environment first, and the next pass sees nothing to keep alive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sprout.accessfiles import AccessFiles
from sprout.accessfiles import folder_of as access_folder_of
from sprout.controlplane.durations import parse_since
from sprout.controlplane.instances import SecretBook
from sprout.controlplane.logquery import LIMIT_MAX, query_logs
from sprout.controlplane.reconcile import Reconciler
from sprout.controlplane.release_phase import run_release_phase
from sprout.controlplane.resources import Resources
from sprout.controlplane.retire import STOP_GRACE
from sprout.controlplane.router_process import RouterProcess
from sprout.controlplane.status import environments_status
from sprout.errors import ConflictError, NotFoundError, SproutError, UserError
from sprout.logs.store import LogStore
from sprout.paths import Home
from sprout.plan import ApplyResult, apply_manifest
from sprout.plan.conflicts import refuse_host_conflicts
from sprout.providers.base import Provider
from sprout.spec import Manifest, load_manifest, manifest_path, resolve_secrets, secret_keys
from sprout.spec.envname import check_env_name
from sprout.state import Deployment, Environment, Instance, StateStore
from sprout.state.store import env_id


class Controller:
    """The daemon's operations, shared by the API routes."""

    def __init__(
        self,
        home: Home,
        store: StateStore,
        provider: Provider,
        router: RouterProcess,
        reconciler: Reconciler,
        resources: Resources,
        secrets: SecretBook,
        log_store: LogStore,
        start_release: Callable[[str, str, str, str], Deployment],
        daemon_info: Callable[[], dict[str, Any]],
        quiesce: Callable[[], None],
        request_stop: Callable[[], None],
    ) -> None:
        self._home = home
        self._store = store
        self._provider = provider
        self._router = router
        self._reconciler = reconciler
        self._resources = resources
        self._secrets = secrets
        self._logs = log_store
        self._start_release = start_release
        self._daemon_info = daemon_info
        self._quiesce = quiesce
        self._request_stop = request_stop

    def status(self) -> dict[str, Any]:
        """The daemon, the router, and every environment with its URL and instances."""
        router = self._router.current()
        port = router.port if router else self._router.saved_port()
        environments = environments_status(
            self._store, port, self._reconciler.checks(), self._reconciler.failing(), self._home.tls
        )
        for doc in environments:
            doc["session_nodes"] = self._resources.session_nodes(doc["app"], doc["env"])
        return {
            "daemon": self._daemon_info(),
            "router": {
                "running": router is not None,
                "pid": router.record.pid if router else None,
                "port": port,
                "https_port": router.https_port if router else self._router.saved_https_port(),
                "url": f"http://127.0.0.1:{port}/" if port else None,
            },
            "environments": environments,
        }

    def health(self) -> dict[str, Any]:
        """The status document with the router's live counters of each instance (`router`: None if unknown).

        The counters are cumulative; `time` lets a client turn two readings into rates.
        """
        doc = self.status()
        handle = self._router.current()
        targets: dict[str, Any] = {}
        if handle is not None:
            try:
                targets = self._router.admin(handle).metrics().get("targets", {})
            except SproutError as exc:
                doc["router"]["error"] = str(exc)
        for env in doc["environments"]:
            for instance in env["instances"]:
                instance["router"] = targets.get(instance["id"])
        doc["time"] = time.time()
        return doc

    def bill(self) -> dict[str, Any]:
        """This calendar month's bill so far (UTC), as `sprout cost --json` prints it.

        It starts at the month's first instant or the first launch, whichever is later, as `sprout cost`
        starts at the first launch: a fixed peak fleet is not charged for days before anything ran.
        """
        from sprout.cost import observed
        from sprout.cost.report import build_report

        now = time.time()
        lifetimes = observed.lifetimes(self._store)
        month = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        since = max(month.timestamp(), min((life.start for life in lifetimes), default=now))
        return build_report(
            lifetimes, observed.pricing(self._store), since, now, observed.desired(self._store)
        ).to_json()

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Apply an app folder's manifest (and pushed version) to an environment; the plan or no changes."""
        app_dir = Path(request["app_dir"])
        env_name = check_env_name(str(request.get("env") or "production"), "apply: env")
        port = request.get("port")
        secrets = request.get("secrets") or {}
        if not isinstance(secrets, dict):
            raise UserError(
                f"apply: secrets must be an object of names to values, not {type(secrets).__name__}"
            )
        given = {str(k): str(v) for k, v in secrets.items()}
        manifest = load_manifest(app_dir)
        # Before the release command runs or anything starts (`apply_manifest` checks again under the lock).
        refuse_host_conflicts(self._store, manifest, env_name, str(manifest_path(app_dir)))
        if any(name not in given for name in secret_keys(manifest)):
            # Fail before anything changes when a secret can be read neither by the CLI nor the daemon.
            given = {**resolve_secrets(manifest, app_dir), **given}
        https_port = request.get("https_port")
        self._router.ensure(int(port) if port else None, int(https_port) if https_port else None)
        app, user, version = manifest.app.name, str(request.get("user") or "unknown"), request.get("version")
        self._release_phase_first(app, env_name, version, manifest, given)
        with self._reconciler.lock:
            self._secrets.remember(env_id(app, env_name), given)
            current = self._store.get_environment(app, env_name)
            new_version = current is not None and bool(version) and version != current.current_version
            if current is None or not new_version or not self._store.list_groups(app, env_name):
                result = apply_manifest(self._store, app_dir, env_name, version, user)
                self._default_route_from(manifest, app, env_name, user)
                return {"app": app, "env": env_name, **result_fields(result)}
            holder = self._store.lock_holder(env_id(app, env_name))
            if holder is not None:
                raise ConflictError(
                    f"{env_id(app, env_name)}: a release is in progress ({holder}); "
                    "run `sprout up` again when it is done"
                )
            # Releases manage this environment's groups: settings now, the new version as a release.
            result = apply_manifest(self._store, app_dir, env_name, current.current_version, user)
            self._default_route_from(manifest, app, env_name, user)
        deployment = self._start_release(app, env_name, str(version), user)
        fields = result_fields(result)
        plan = "" if fields["plan"].startswith("no changes") else fields["plan"] + "\n"
        return {
            "app": app,
            "env": env_name,
            **fields,
            "changed": True,
            "plan": plan + f"~ release {version} ({deployment.strategy}): deployment {deployment.id} started",
            "deployment": deployment.id,
        }

    def set_default_route(self, app: str, env: str, user: str) -> dict[str, Any]:
        """Make the router's default route serve `app/env` (recorded in the state store, pushed at once)."""
        with self._reconciler.lock:
            previous = next((e for e in self._store.list_environments() if e.default_route), None)
            found = self._store.set_default_route(app, env)
            if previous is None or previous.id != found.id:
                self._store.record_event(
                    app,
                    env,
                    "router.default",
                    f"default route moved to {found.id}" + (f" from {previous.id}" if previous else ""),
                )
                move = f"~ default route: {previous.id if previous else 'none'} → {found.id}"
                self._history(found, user, "default-route", move)
            self._push_table_now(found, "router.default")
        return {"app": app, "env": env, "previous": previous.id if previous else None}

    def _push_table_now(self, env: Environment, kind: str) -> None:
        """Send the routing table to a running router now; a failure is an event (the next pass retries)."""
        router = self._router.current()
        try:
            if router is not None:
                self._reconciler.push_table(self._router.admin(router))
        except SproutError as exc:
            self._store.record_event(env.app, env.name, kind, f"{env.id}: routing table not updated: {exc}")

    def _history(self, env: Environment, user: str, action: str, diff_text: str) -> None:
        """One audit history row about an environment, at its manifest and version."""
        self._store.append_history(
            user=user,
            app=env.app,
            env=env.name,
            action=action,
            manifest_hash=env.manifest_hash,
            version=env.current_version,
            diff_text=diff_text,
        )

    def _default_route_from(self, manifest: Manifest, app: str, env: str, user: str) -> None:
        """`[router] default_route = true`: every apply of the environment takes the default route."""
        if manifest.router.default_route:
            found = self._store.get_environment(app, env)
            if found is not None and not found.default_route:
                self.set_default_route(app, env, user)

    def _release_phase_first(
        self, app: str, env: str, label: object, manifest: Manifest, secrets: dict[str, str]
    ) -> None:
        """Run the release command of a version this apply brings in, before any instance of it starts.

        Environments managed by releases are left to the release engine, which runs it in its own step.
        """
        if not isinstance(label, str) or not label:
            return
        current = self._store.get_environment(app, env)
        if current is not None and (current.current_version == label or self._store.list_groups(app, env)):
            return
        version = self._store.get_version(app, label)
        if version is None:
            raise NotFoundError(f"{app} {label}: no such version (push it with `sprout push`)")
        run_release_phase(self._home, self._store, self._resources, env, version, manifest, secrets)

    def down(self, app: str, env: str, user: str) -> dict[str, Any]:
        """Stop an environment's instances and services and remove its route; what is left afterwards."""
        with self._reconciler.lock:
            found = self._store.get_environment(app, env)
            if found is None:
                return self._down_leftovers(app, env)
            instances = self._instances_to_stop(app, env)
            self._abort_releases(app, env)
            self._store.delete_environment(app, env)
            self._secrets.forget(found.id)
            self._store.record_event(
                app, env, "env.down", f"tearing down {found.id} ({len(instances)} instances)"
            )
            # The processes must stop whatever the router says.
            self._push_table_now(found, "env.down")
            with ThreadPoolExecutor(max_workers=max(1, len(instances))) as pool:
                list(pool.map(lambda i: self._provider.stop(i.id, STOP_GRACE), instances))
            for instance in instances:
                self._store.update_instance(instance.id, state="stopped")
            services = self._resources.release(app, env)
            self._history(found, user, "down", _down_diff(found, len(instances)))
            self._store.record_event(app, env, "env.removed", f"{found.id} removed")
            remaining = len(self._store.list_environments())
        return {"stopped": [i.id for i in instances], "services": services, "remaining": remaining}

    def _down_leftovers(self, app: str, env: str) -> dict[str, Any]:
        """No such environment: stop what an `up` that never recorded it left running (the memcached
        nodes its release command was given, instances still alive); NotFoundError when nothing is."""
        instances = self._instances_to_stop(app, env)
        services = self._resources.release(app, env)
        if not instances and not services:
            raise NotFoundError(f"{env_id(app, env)}: no such environment (see `sprout status`)")
        with ThreadPoolExecutor(max_workers=max(1, len(instances))) as pool:
            list(pool.map(lambda i: self._provider.stop(i.id, STOP_GRACE), instances))
        for instance in instances:
            self._store.update_instance(instance.id, state="stopped")
        self._store.record_event(
            app,
            env,
            "env.down",
            f"{env_id(app, env)} was never recorded; stopped what its `up` left running "
            f"({len(instances)} instances, {len(services)} service nodes)",
        )
        return {"stopped": [i.id for i in instances], "services": services, "remaining": self._remaining()}

    def _remaining(self) -> int:
        return len(self._store.list_environments())

    def _instances_to_stop(self, app: str, env: str) -> list[Instance]:
        """The environment's live instances, and any other of its instances whose process still runs
        (one recorded failed or stopped while its agent lived on): `down` leaves none behind."""
        live = ("launching", "running", "draining")
        running = {o.instance_id for o in self._provider.observe() if o.state != "exited"}
        return [i for i in self._store.list_instances(app, env) if i.state in live or i.id in running]

    def _abort_releases(self, app: str, env: str) -> None:
        """End an environment's unfinished releases (it is going away) and free its release lock."""
        for deployment in self._store.list_deployments(app, env, unfinished=True):
            self._store.update_deployment(
                deployment.id,
                state="done",
                outcome="aborted",
                reason="environment torn down by `sprout down`",
                finished_at=time.time(),
            )
            self._store.record_event(
                app, env, "release.abort", f"release {deployment.id} ended: environment down"
            )
        holder = self._store.lock_holder(env_id(app, env))
        if holder is not None:
            self._store.release_lock(env_id(app, env), holder)

    def logs(self, query: dict[str, str]) -> dict[str, Any]:
        """Log lines matching the query's filters (`after` pages forward for `logs -f`)."""
        return query_logs(self._logs, query, AccessFiles(access_folder_of(self._home.router_access_log)))

    def events(self, query: dict[str, str]) -> dict[str, Any]:
        """Recorded control-plane events, newest last."""
        since = parse_since(query["since"], time.time()) if query.get("since") else None
        limit = min(int(query.get("limit") or 100), LIMIT_MAX)
        events = self._store.list_events(
            app=query.get("app") or None,
            env=query.get("env") or None,
            since=since,
            limit=limit,
            kind=query.get("kind") or None,
        )
        return {"events": [asdict(event) for event in events]}

    def shutdown(self, stop_router: bool) -> dict[str, Any]:
        """Stop the daemon after this answer; with `stop_router`, stop the router first (no env may be left)."""
        router_stopped = False
        if stop_router:
            self._refuse_if_environments_left()
            # The loops would restart or use a router they find missing: stop them before the router.
            self._quiesce()
            with self._reconciler.lock:
                self._refuse_if_environments_left()
                router_stopped = self._router.stop()
                self._reconciler.forget_table()
        self._request_stop()
        return {"stopping": True, "router_stopped": router_stopped}

    def _refuse_if_environments_left(self) -> None:
        left = self._store.list_environments()
        if left:
            names = ", ".join(e.id for e in left)
            raise UserError(f"shutdown: environments still running ({names}); `sprout down` them first")


def result_fields(result: ApplyResult) -> dict[str, Any]:
    """The API's view of an apply result: whether it changed anything, and the plan's text."""
    return {"changed": result.changed, "plan": result.diff, "history_id": result.history_id}


def _down_diff(env: Environment, instances: int) -> str:
    return f"- environment {env.id} (version {env.current_version or 'none'}, {instances} instances)"

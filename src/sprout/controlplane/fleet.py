"""The release engine's view of this machine: desired target groups in the state store, weights in the
router, health from the reconcile loop's records, the release phase as a one-off command.

An environment that has never had a release has no group rows: its fleet is the implicit group "blue"
(`groups.desired_groups`). The first change a release makes writes that group down, and from then on
the rows are the desired state the reconcile loop converges to.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sprout.controlplane.groups import desired_groups
from sprout.controlplane.instances import SecretBook
from sprout.controlplane.release_phase import run_release_phase
from sprout.controlplane.resources import Resources
from sprout.controlplane.routing import route_name
from sprout.deploy.analysis import Window
from sprout.deploy.fleet import STRATEGIES, GroupHealth
from sprout.deploy.gate import GateResult, run_test_gate
from sprout.errors import NotFoundError, SproutError
from sprout.healthcheck import describe_check, wrong_path, wrong_path_message
from sprout.paths import Home
from sprout.router.client import RouterControl
from sprout.services.database import database_url
from sprout.spec import DATABASE_PASSWORD
from sprout.state import Environment, StateStore
from sprout.state.models import Group, Instance

#: Log lines of a failing instance quoted in an aborted release's reason.
QUOTED_LOG_LINES = 5


class ControlPlaneFleet:
    """`sprout.deploy.fleet.Fleet` for the local control plane."""

    strategies = STRATEGIES

    def __init__(
        self,
        home: Home,
        store: StateStore,
        router: Callable[[], RouterControl],
        resources: Resources,
        secrets: SecretBook,
        lock: threading.RLock,
        changed: Callable[[], None] = lambda: None,
        checks: Callable[[], Mapping[str, Mapping[str, Any]]] = dict,
    ) -> None:
        self._home = home
        self._store = store
        self._router = router
        self._resources = resources
        self._secrets = secrets
        # The reconcile loop's lock: a weight change and its routing-table push never interleave.
        self._lock = lock
        # Wakes the reconcile loop: a group written now is launched now, not at the next tick.
        self._changed = changed
        # The router's last health check of each instance, as the reconcile loop last read it.
        self._checks = checks

    def groups(self, app: str, env: str) -> dict[str, Group]:
        return {g.name: g for g in desired_groups(self._store, self._environment(app, env))}

    def set_group(self, app: str, env: str, group: Group) -> None:
        with self._lock:
            self._materialise(app, env)
            self._store.put_group(app, env, group)
        self._changed()

    def remove_group(self, app: str, env: str, name: str) -> None:
        with self._lock:
            self._materialise(app, env)
            self._store.delete_group(app, env, name)
        self._changed()

    def set_weights(self, app: str, env: str, weights: Mapping[str, int]) -> None:
        with self._lock:
            groups = self._materialise(app, env)
            for name, weight in weights.items():
                if name in groups:
                    g = groups[name]
                    self._store.put_group(
                        app, env, Group(g.name, g.version, g.capacity, weight, g.standby_until)
                    )
            present = {name: weight for name, weight in weights.items() if name in groups}
            try:
                self._router().set_weights(route_name(app, env), present)
            except SproutError as exc:
                # The next reconcile pass pushes the whole table with these weights.
                self._store.record_event(
                    app, env, "router.weights", f"weights wait for the next table push: {exc}"
                )

    def health(self, app: str, env: str, name: str, since: float) -> GroupHealth:
        group = self.groups(app, env).get(name)
        if group is None:
            return GroupHealth(0, 0, 0, 0, f"group {name} is gone")
        mine = [
            i
            for i in self._store.list_instances(app, env)
            if i.group_name == name and i.version == group.version
        ]
        live = [i for i in mine if i.state in ("launching", "running")]
        healthy = sum(1 for i in live if i.state == "running" and i.health == "healthy")
        failed = [i for i in mine if i.state in ("failed", "stopped") and i.created_at >= since]
        failure = None
        checks = self._checks()
        if failed or (live and healthy < group.capacity):
            path = self._environment(app, env).manifest.health.path
            witness = (failed or [i for i in live if i.health != "healthy"] or live)[-1]
            check = checks.get(witness.id)
            why = describe_check(check) if check else f"GET {path} did not answer 2xx/3xx"
            failure = f"{witness.id}: {why}{self._last_lines(witness)}"
        # One crash is retried by the reconcile loop; a whole round of them is the version's fault.
        failed_count = len(failed) if len(failed) >= max(group.capacity, 1) else 0
        wrong = wrong_path(checks.get(i.id) for i in live) if live and not healthy else None
        if wrong is not None:
            # Every check answers the same 4xx: waiting out the health timeout cannot help.
            failure = wrong_path_message(*wrong)
            failed_count = max(len(live), 1)
        return GroupHealth(group.capacity, healthy, len(live) - healthy, failed_count, failure)

    def metrics(self, app: str, env: str) -> dict[str, Mapping[str, Any]]:
        route = route_name(app, env)
        groups = self._router().metrics().get("groups", {})
        return {doc["group"]: doc for doc in groups.values() if doc.get("route") == route}

    def window(
        self, app: str, env: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
    ) -> Window:
        return Window.between(before, after)

    def smoke(self, app: str, env: str, name: str, path: str) -> str | None:
        for instance in self._store.list_instances(app, env, states=("running",)):
            if instance.group_name != name:
                continue
            url = f"http://{instance.address}{path}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    status = int(response.status)
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:
                return f"{instance.id}: GET {path}: {exc}"
            if not 200 <= status < 400:
                return f"{instance.id}: GET {path} answered {status}"
        return None

    def release(self, app: str, env: str, version: str, stop: threading.Event | None = None) -> None:
        record = self._store.get_version(app, version)
        if record is None:
            raise NotFoundError(f"{app} {version}: no such version (push it with `sprout push`)")
        environment = self._environment(app, env)
        secrets = self._secrets.values(environment)
        run_release_phase(
            self._home, self._store, self._resources, env, record, environment.manifest, secrets, stop
        )

    def refusal(self, strategy: str) -> str:
        return f"--strategy: unknown strategy {strategy!r} ({', '.join(STRATEGIES)})"

    def test(self, app: str, env: str, version: str) -> GateResult:
        record = self._store.get_version(app, version)
        if record is None:
            raise NotFoundError(f"{app} {version}: no such version (push it with `sprout push`)")
        database = record.manifest.resources.database
        server_url = None
        if database.engine != "sqlite" and database.url:
            password = self._secrets.values(self._environment(app, env)).get(DATABASE_PASSWORD)
            server_url = database_url(database.engine, database.url, self._home.root, password)
        return run_test_gate(
            app=app,
            version=version,
            sha256=record.sha256,
            store_url=record.store_url or str(self._home.artifacts),
            cache_dir=self._home.cache,
            manifest=record.manifest,
            environ=os.environ,
            log_path=self._home.logs / f"test-{app}-{version}.log",
            server_url=server_url,
        )

    def _environment(self, app: str, env: str) -> Environment:
        found = self._store.get_environment(app, env)
        if found is None:
            raise NotFoundError(f"{app}/{env}: no such environment (run `sprout up` first)")
        return found

    def _materialise(self, app: str, env: str) -> dict[str, Group]:
        """Write the implicit group down before the first change, so rows are the whole truth."""
        groups = self.groups(app, env)
        if groups and not self._store.list_groups(app, env):
            for group in groups.values():
                self._store.put_group(app, env, group)
        return groups

    def _last_lines(self, instance: Instance) -> str:
        path = Path(self._home.instance_dir(instance.id)) / "app.log"
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-QUOTED_LOG_LINES:]
        except OSError:
            return ""
        messages = []
        for line in lines:
            try:
                messages.append(str(json.loads(line).get("msg", line)))
            except ValueError:
                messages.append(line)
        return "; its last log lines:\n  " + "\n  ".join(messages) if messages else ""

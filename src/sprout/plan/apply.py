"""Plan and apply as one pipeline: load the manifest, read recorded and observed state, plan, execute.

`sprout plan` runs it with the DisplayExecutor and `sprout up` (through the control plane) with the
ApplyExecutor; nothing else differs, so what `plan` shows is what `up` does.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

from sprout.errors import NotFoundError
from sprout.plan.conflicts import refuse_host_conflicts
from sprout.plan.executors import ApplyExecutor, Executor
from sprout.plan.planner import Plan, plan
from sprout.spec import Manifest, load_manifest, manifest_path
from sprout.state import Environment, StateStore, Version
from sprout.state.models import LIVE_STATES


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did: its plan, and the audit history row it wrote (None when nothing changed)."""

    plan: Plan
    history_id: int | None

    @property
    def changed(self) -> bool:
        """True when the apply wrote something."""
        return self.history_id is not None

    @property
    def diff(self) -> str:
        """The plan's diff lines (or its no-changes reason) as text."""
        return "\n".join(self.plan.describe())


def resolve_version(
    store: StateStore, manifest: Manifest, current: Environment | None, label: str | None
) -> Version | None:
    """The version to run: the one named, else the one running now, else the newest pushed."""
    app = manifest.app.name
    if label is not None:
        found = store.get_version(app, label)
        if found is None:
            raise NotFoundError(f"{app} {label}: no such version (see pushed versions with `sprout push`)")
        return found
    if current is not None and current.current_version is not None:
        return store.get_version(app, current.current_version)
    return store.latest_version(app)


def build_plan(store: StateStore, app_dir: Path, env: str, version: Version | str | None = None) -> Plan:
    """The plan for applying an app folder's manifest (and a version or label) to an environment."""
    app_dir = app_dir.resolve()
    manifest = load_manifest(app_dir)
    refuse_host_conflicts(store, manifest, env, str(manifest_path(app_dir)))
    current = store.get_environment(manifest.app.name, env)
    observed = store.list_instances(manifest.app.name, env, states=LIVE_STATES)
    warm = [g for g in store.list_groups(manifest.app.name, env) if g.standby_until is not None]
    if not isinstance(version, Version):
        version = resolve_version(store, manifest, current, version)
    return plan(manifest, app_dir, env, current, observed, version, warm)


def run(
    store: StateStore, app_dir: Path, env: str, version: Version | str | None, executor: Executor
) -> ApplyResult:
    """Plan, then execute with the given executor."""
    the_plan = build_plan(store, app_dir, env, version)
    entry = executor.execute(the_plan)
    return ApplyResult(the_plan, entry.id if entry else None)


def apply_manifest(
    store: StateStore, app_dir: Path, env: str, version_label: str | None, user: str | None = None
) -> ApplyResult:
    """Make an environment match an app folder's manifest in the state store; one history row if changed.

    Planned and applied in one write transaction: of two concurrent applies the second plans against
    what the first wrote, so it finds nothing left to do and records nothing.
    """
    with store.transaction():
        return run(store, app_dir, env, version_label, ApplyExecutor(store, user or getpass.getuser()))

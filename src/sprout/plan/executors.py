"""Executors: the same plan either displayed (`sprout plan`) or applied to the state store (`sprout up`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape

from sprout.plan.actions import (
    Action,
    CreateEnvironment,
    Noop,
    SetCapacity,
    SetVersion,
    StartResource,
    StopResource,
    UpdateRoutes,
    UpdateSettings,
)
from sprout.plan.planner import Plan
from sprout.state import Environment, HistoryEntry, StateStore

_STYLES = {"+": "green", "-": "red", "~": "yellow"}


class Executor(Protocol):
    """Something that carries a plan out: shows it, or makes it so."""

    def execute(self, plan: Plan) -> HistoryEntry | None:
        """Run the plan; return the audit history entry when something was recorded."""
        ...


class DisplayExecutor:
    """Shows the plan as a coloured diff and changes nothing."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def execute(self, plan: Plan) -> HistoryEntry | None:
        """Print the plan's diff lines (or its no-changes reason)."""
        if plan.is_empty:
            for line in plan.describe():
                self.console.print(escape(line), highlight=False)
            self._notes(plan)
            return None
        count = sum(not isinstance(a, Noop) for a in plan.actions)
        self.console.print(
            f"[bold]{plan.app}/{plan.env}[/]: {count} change{'s' if count != 1 else ''}", highlight=False
        )
        for line in plan.describe():
            style = _STYLES.get(line[:1], "")
            self.console.print(
                f"  [{style}]{escape(line)}[/]" if style else f"  {escape(line)}", highlight=False
            )
        self._notes(plan)
        return None

    def _notes(self, plan: Plan) -> None:
        for note in plan.notes:
            self.console.print(f"  [dim]({escape(note)})[/]", highlight=False, soft_wrap=True)


class ApplyExecutor:
    """Writes a plan's desired state into the state store and appends one audit history row.

    The manifest is written first for any non-empty plan (every action derives from it); each action
    then applies its own part. The control plane's reconcile loop turns the recorded desired state into
    running instances, routes and resource nodes. An empty plan writes nothing, and the history gets a
    row only when the recorded desired state changed: a plan whose only lines are instances the reconcile
    loop is still bringing to the desired count (a replacement launching) changes nothing to record.
    """

    def __init__(self, store: StateStore, user: str) -> None:
        self.store = store
        self.user = user

    def execute(self, plan: Plan) -> HistoryEntry | None:
        """Apply the plan; the history entry, or None when there was nothing to do."""
        if plan.is_empty:
            return None
        # Resolve every handler before the first write: an unknown action must change nothing.
        steps = [(self._handler(action), action) for action in plan.actions]
        before = self.store.get_environment(plan.app, plan.env)
        self.store.upsert_environment(plan.app, plan.env, plan.manifest, plan.app_dir)
        for handler, action in steps:
            handler(plan, action)
        environment = self.store.get_environment(plan.app, plan.env)
        assert environment is not None
        if before is not None and _desired(before) == _desired(environment):
            return None
        return self.store.append_history(
            user=self.user,
            app=plan.app,
            env=plan.env,
            action=plan.kind,
            manifest_hash=environment.manifest_hash,
            version=environment.current_version,
            diff_text="\n".join(plan.describe()),
        )

    def _handler(self, action: Action) -> Callable[[Plan, Any], None]:
        handler: Callable[[Plan, Any], None] | None = getattr(
            self, f"_do_{_snake(type(action).__name__)}", None
        )
        if handler is None:
            raise TypeError(f"ApplyExecutor cannot apply {type(action).__name__}; add a _do_ method for it")
        return handler

    def _do_create_environment(self, plan: Plan, action: CreateEnvironment) -> None:
        self.store.record_event(
            action.app, action.env, "env.created", f"environment {action.app}/{action.env} created"
        )

    def _do_update_settings(self, plan: Plan, action: UpdateSettings) -> None:
        """Already written with the manifest; nothing else holds settings."""

    def _do_set_version(self, plan: Plan, action: SetVersion) -> None:
        self.store.set_current_version(plan.app, plan.env, action.new)

    def _do_set_capacity(self, plan: Plan, action: SetCapacity) -> None:
        environment = self.store.get_environment(plan.app, plan.env)
        assert environment is not None
        # One write per plan: the per-zone actions all follow from the plan's total.
        if environment.desired_capacity != plan.desired_capacity:
            self.store.set_desired_capacity(
                plan.app, plan.env, plan.desired_capacity, f"applied by {self.user}"
            )

    def _do_update_routes(self, plan: Plan, action: UpdateRoutes) -> None:
        """The router table is built from the manifest's hosts, already written."""

    def _do_start_resource(self, plan: Plan, action: StartResource) -> None:
        self.store.record_event(
            plan.app, plan.env, "resource.wanted", action.describe(), resource=action.kind, zone=action.zone
        )

    def _do_stop_resource(self, plan: Plan, action: StopResource) -> None:
        self.store.record_event(
            plan.app, plan.env, "resource.unwanted", action.describe(), resource=action.kind, zone=action.zone
        )

    def _do_noop(self, plan: Plan, action: Noop) -> None:
        """A plan that also holds real actions carries no Noop; nothing to do."""


def _desired(env: Environment) -> tuple[str, str | None, int]:
    """What an apply can change about an environment: its manifest, version and fleet size."""
    return env.manifest_hash, env.current_version, env.desired_capacity


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


__all__ = ["Action", "ApplyExecutor", "DisplayExecutor", "Executor"]

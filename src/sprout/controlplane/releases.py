"""Releases through the API: start, roll back, swap and list, over the release engine the daemon ticks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from sprout.deploy.engine import ReleaseEngine
from sprout.errors import UserError
from sprout.state import StateStore


class ReleaseOps:
    """The API's release operations; the daemon's ticker advances every started release step by step."""

    def __init__(
        self, store: StateStore, engine: ReleaseEngine, started: Callable[[], None] = lambda: None
    ) -> None:
        self._store = store
        self._engine = engine
        # Wakes the ticker, so a release's first step runs now rather than at the next tick.
        self._started = started

    def deploy(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run a pushed version's test gate (unless `skip_tests`), then start releasing it into an
        environment (`strategy` defaults to the manifest's)."""
        app, env = _target(request)
        version = request.get("version")
        if not isinstance(version, str) or not version:
            raise UserError("deploy: the request needs `version` (a pushed label such as v3)")
        strategy = request.get("strategy")
        skip_tests = request.get("skip_tests", False)
        if not isinstance(skip_tests, bool):
            raise UserError("deploy: `skip_tests` must be true or false")
        note = str(request.get("note") or "")
        if skip_tests:
            note = "; ".join(filter(None, ["tests skipped (--skip-tests)", note]))
        deployment = self._engine.start(
            app,
            env,
            version,
            str(strategy) if strategy else None,
            _user(request),
            note,
            skip_tests=skip_tests,
        )
        self._started()
        return {"deployment": asdict(deployment)}

    def rollback(self, request: dict[str, Any]) -> dict[str, Any]:
        """Back to the warm old fleet at once, or a new release of an earlier version."""
        app, env = _target(request)
        to = request.get("to")
        result = self._engine.rollback(app, env, _user(request), str(to) if to else None)
        if result.deployment is not None:
            self._started()
        return {
            "instant": result.instant,
            "version": result.version,
            "deployment": asdict(result.deployment) if result.deployment else None,
            "note": result.note,
        }

    def swap(self, request: dict[str, Any]) -> dict[str, Any]:
        """Blue/green: all traffic to the warm fleet."""
        app, env = _target(request)
        return {"version": self._engine.swap(app, env, _user(request))}

    def deployments(self, query: dict[str, str]) -> dict[str, Any]:
        """Recorded releases, oldest first."""
        limit = int(query.get("limit") or 20)
        found = self._store.list_deployments(query.get("app") or None, query.get("env") or None, limit=limit)
        return {"deployments": [asdict(d) for d in found]}

    def rollbacks(self, query: dict[str, str]) -> dict[str, Any]:
        """The latest instant rollbacks (switches to a warm fleet, in the audit history), oldest first."""
        limit = int(query.get("limit") or 20)
        found = [
            e
            for e in self._store.list_history(query.get("app") or None, query.get("env") or None)
            if e.action == "rollback"
        ][-limit:]
        return {
            "rollbacks": [
                {
                    "time": e.time,
                    "app": e.app,
                    "env": e.env,
                    "version": e.version,
                    "user": e.user,
                    "summary": e.diff_text.splitlines()[0] if e.diff_text else "rollback",
                }
                for e in found
            ]
        }


def _target(request: dict[str, Any]) -> tuple[str, str]:
    app = request.get("app")
    if not isinstance(app, str) or not app:
        raise UserError("the request needs `app` (the app's name)")
    return app, str(request.get("env") or "production")


def _user(request: dict[str, Any]) -> str:
    return str(request.get("user") or "unknown")

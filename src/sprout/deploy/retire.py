"""Retiring warm fleets: the old colour a blue/green or canary release keeps at weight 0 for an instant
rollback is removed when its `rollback_window` ends.

The daemon's release loop runs `Retirement.run` on every pass, for every environment on its own (one
environment's failure is an event on it, retried next pass, and never keeps another's old fleet
running). Removing the group hands its instances to the reconcile loop, which takes them out of the
router, drains and stops them. The expiry is stored with the group, so a restarted daemon retires
what fell due while it was down on its first pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sprout.deploy.fleet import Fleet
from sprout.state.store import StateStore

log = logging.getLogger(__name__)

RETIRE_EVENT = "release.retire"


class Retirement:
    """Removes expired warm fleets; `lock` is the one rollback and swap hold while they use a warm fleet."""

    def __init__(
        self, store: StateStore, fleet: Fleet, clock: Callable[[], float], lock: threading.RLock
    ) -> None:
        self._store = store
        self._fleet = fleet
        self._clock = clock
        self._lock = lock
        self._errors: dict[str, str] = {}

    def run(self) -> None:
        """Retire every environment's expired warm fleets, each environment on its own."""
        for environment in self._store.list_environments():
            try:
                self.expired(environment.app, environment.name)
            except Exception as exc:
                # Recorded once per distinct failure: the loop retries every half second.
                message = f"{type(exc).__name__}: {exc}"
                if self._errors.get(environment.id) != message:
                    log.exception("retiring the warm fleet of %s failed", environment.id)
                    self._store.record_event(
                        environment.app,
                        environment.name,
                        "release.retire_failed",
                        f"retiring the expired warm fleet failed: {message}; retrying",
                    )
                    self._errors[environment.id] = message
            else:
                self._errors.pop(environment.id, None)

    def expired(self, app: str, env: str) -> list[str]:
        """Remove the environment's warm fleets whose window has passed, each recorded; their names."""
        with self._lock:
            now = self._clock()
            expired = [
                g
                for g in self._fleet.groups(app, env).values()
                if g.standby_until is not None and g.standby_until <= now
            ]
            for group in expired:
                self._fleet.remove_group(app, env, group.name)
                self._store.record_event(
                    app,
                    env,
                    RETIRE_EVENT,
                    f"rollback window over: warm fleet {group.name} ({group.version}, "
                    f"{group.capacity} instance(s)) retired",
                    group=group.name,
                    version=group.version,
                    capacity=group.capacity,
                    until=group.standby_until,
                )
        return [group.name for group in expired]

    def why_not_warm(self, app: str, env: str, version: str) -> str:
        """Why a rollback to `version` cannot be a weight switch: the warm fleet holds another version,
        its window passed, a later release took its place, or none was kept."""
        now = self._clock()
        warm = sorted(
            g.version
            for g in self._fleet.groups(app, env).values()
            if g.standby_until is not None and g.standby_until > now
        )
        if warm:
            return f"the warm fleet holds {', '.join(warm)}, not {version}"
        retired = self._store.list_events(app, env, limit=1, kind=RETIRE_EVENT)
        replaced = [d for d in self._store.list_deployments(app, env) if d.data.get("replaced_warm")]
        if replaced and (not retired or replaced[-1].started_at > retired[0].time):
            release, fleet = replaced[-1], replaced[-1].data["replaced_warm"]
            return (
                f"warm fleet {fleet['group']} ({fleet['version']}) was replaced at {_clock(release.started_at)} "
                f"by release {release.id} ({release.version}, {release.outcome or 'running'}), which "
                "launched in its colour"
            )
        if retired:
            event = retired[0]
            return (
                f"the rollback window has passed: warm fleet {event.data.get('group')} "
                f"({event.data.get('version')}) was retired at {_clock(event.time)}"
            )
        return "no warm fleet is kept (only blue/green and canary releases keep one, for rollback_window)"


def _clock(at: float) -> str:
    """A time of today as the CLI prints it."""
    return time.strftime("%H:%M:%S", time.localtime(at))

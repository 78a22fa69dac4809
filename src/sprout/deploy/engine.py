"""The release engine: starts releases under the environment's lock and advances them step by step.

A deployment's `state` is the name of its current step (see `steps.py`); every transition is persisted
with the step's data and recorded as an event before the next step runs, so a control plane that
restarts resumes each unfinished release where it stood (`tick_all`). A failed step moves the release
to `aborting`, whose undo (remove the new group, traffic and capacity back to the old one) is itself
idempotent. Terminal deployments have state `done` and an outcome: succeeded, aborted or rolled_back.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

from sprout.deploy.adopt import adopt_manifest
from sprout.deploy.fleet import STRATEGIES, Fleet, Group
from sprout.deploy.gate import blocked
from sprout.deploy.retire import Retirement
from sprout.deploy.steps import FIRST_STEP, RELEASE_STEP, STEPS, Step, Transition, release_done, stay
from sprout.errors import ConflictError, NotFoundError, SproutError, UserError
from sprout.spec.models import Manifest
from sprout.state.models import Deployment, Lock
from sprout.state.store import StateStore

ManifestLookup = Callable[[str, str], Manifest]

ABORTING = "aborting"
DONE = "done"
#: Steps one `tick_all` may run in a row for one release before the others get their turn.
MAX_STEPS_PER_TICK = 8


@dataclass(frozen=True)
class RollbackResult:
    """How a rollback went: an instant weight switch to a warm fleet, or a new release of an old version."""

    instant: bool
    version: str
    deployment: Deployment | None = None
    #: Why a rollback is a new release rather than a switch (the window passed, no warm fleet was kept).
    note: str = ""


#: The release locks this process holds through a test gate, as (environment, holder): held while no
#: release is recorded yet, so `free_orphan_locks` must leave them. Process-wide: every engine of a
#: process may share one store.
_GATING: set[tuple[str, str]] = set()
_GATING_GUARD = threading.Lock()


@contextmanager
def _gating(env_id: str, holder: str) -> Iterator[None]:
    """Mark the lock of `env_id` taken by `holder` as in its test gate for the block."""
    with _GATING_GUARD:
        _GATING.add((env_id, holder))
    try:
        yield
    finally:
        with _GATING_GUARD:
            _GATING.discard((env_id, holder))


class ReleaseEngine:
    """Runs releases of one control plane; wired with the state store, a fleet and a manifest lookup."""

    def __init__(
        self,
        store: StateStore,
        fleet: Fleet,
        manifests: ManifestLookup,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.manifests = manifests
        self.clock = clock
        # Rollback, swap and retirement all read then change the warm fleet (API threads, release loop).
        self._warm_lock = threading.RLock()
        self.retirement = Retirement(store, fleet, clock, self._warm_lock)
        self._wake: Callable[[], None] | None = None
        # Release commands running in the background, by release id (see run_release_phases_in_background),
        # each with the event that stops it; `_stop_ended_phases` stops and forgets those of ended releases.
        self._phases: dict[int, tuple[Future[None], threading.Event]] = {}
        self._phase_guard = threading.Lock()
        self._phase_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="release-phase")

    def start(
        self,
        app: str,
        env: str,
        version: str,
        strategy: str | None,
        user: str,
        note: str = "",
        skip_tests: bool = False,
    ) -> Deployment:
        """Begin releasing `version` into `app/env` once its tests pass (unless `skip_tests`: say why in
        `note`, which the history keeps); fail at once if another release holds the lock or the fleet
        cannot do the strategy."""
        if self.store.get_version(app, version) is None:
            raise NotFoundError(f"{app} {version}: no such version (push one with `sprout push`)")
        manifest = self.manifests(app, version)
        strategy = strategy or manifest.deploy.strategy
        if strategy not in STRATEGIES:
            raise UserError(f"--strategy: unknown strategy {strategy!r} ({', '.join(STRATEGIES)})")
        if strategy not in self.fleet.strategies:
            raise UserError(self.fleet.refusal(strategy))
        env_id = f"{app}/{env}"
        holder = (
            f"{user}: {version} ({strategy}) since {time.strftime('%H:%M:%S', time.localtime(self.clock()))}"
        )
        self.free_orphan_locks()
        with _gating(env_id, holder):
            if not self.store.acquire_lock(env_id, holder):
                raise ConflictError(
                    f"{env_id}: another release is in progress (held by {self.store.lock_holder(env_id)}); "
                    "wait for it, or `sprout rollback` to stop it"
                )
            try:
                if not skip_tests:
                    self._gate(app, env, version, manifest, user)
            except BaseException:
                self.store.release_lock(env_id, holder)
                raise
            now = self.clock()
            data = {
                "entered_at": now,
                "started": now,
                "holder": holder,
                "note": note,
                "manifest": manifest.digest(),
            }
            deployment = self.store.create_deployment(
                app, env, version, strategy, user, state=FIRST_STEP, data=data
            )
        self.store.record_event(
            app,
            env,
            "release.start",
            f"release {deployment.id}: {version} ({strategy}) by {user}",
            deployment=deployment.id,
        )
        return deployment

    def _gate(self, app: str, env: str, version: str, manifest: Manifest, user: str) -> None:
        """The test gate: the version's own tests pass, or it is blocked (recorded in the history)."""
        gate = self.fleet.test(app, env, version)
        if gate.passed:
            return
        text, error = blocked(app, version, manifest.app.test, gate)
        self.store.append_history(
            user=user,
            app=app,
            env=env,
            action="blocked",
            manifest_hash=manifest.digest(),
            version=version,
            diff_text=text,
        )
        raise error

    def run_release_phases_in_background(self, wake: Callable[[], None]) -> None:
        """Run release commands in threads of their own, calling `wake` when one ends: the daemon's
        releases loop then never waits on a migration (other releases and retirements go on, and
        the loop is not reported stalled). Without it, `tick` runs them in place (foreground engines)."""
        self._wake = wake

    def tick(self, deployment_id: int) -> Deployment:
        """Run the current step of a release once and persist where it leads."""
        deployment = self.store.get_deployment(deployment_id)
        if deployment.state == RELEASE_STEP and self._wake is not None:
            return self._apply(deployment, self._release_phase(deployment))
        if deployment.state == DONE:
            return deployment
        if deployment.state == ABORTING:
            return self._undo(deployment)
        step = self._step(deployment)
        transition = STEPS[deployment.state](step)
        return self._apply(deployment, transition)

    def _release_phase(self, d: Deployment) -> Transition:
        """The release step run in the background: started, still running, or where its end leads. A
        daemon restarted meanwhile starts it again (its command died with the old one)."""
        with self._phase_guard:
            phase = self._phases.get(d.id)
            if phase is None:
                wake = self._wake
                assert wake is not None
                stop = threading.Event()
                running = self._phase_pool.submit(self.fleet.release, d.app, d.env, d.version, stop)
                running.add_done_callback(lambda _: wake())
                self._phases[d.id] = (running, stop)
            else:
                running = phase[0]
            if not running.done():
                since = float(d.data.get("entered_at", self.clock()))
                return stay(f"release command running ({self.clock() - since:.0f}s)")
            del self._phases[d.id]
        error = running.exception()
        if error is not None and not isinstance(error, SproutError):
            raise error
        return release_done(error)

    def tick_all(self) -> list[Deployment]:
        """Advance every unfinished release until it waits (the daemon calls this every loop, and on start)."""
        self.free_orphan_locks()
        advanced = [self._advance(d.id) for d in self.store.list_deployments(unfinished=True)]
        self._stop_ended_phases()
        return advanced

    def _stop_ended_phases(self) -> None:
        """Stop the release commands whose release ended meanwhile (a rollback, `sprout down`), so none
        runs on beside the next release's: a migration must never run twice at once."""
        with self._phase_guard:
            phases = list(self._phases.items())
        if not phases:
            return
        unfinished = {d.id for d in self.store.list_deployments(unfinished=True)}
        for release_id, (running, stop) in phases:
            if release_id in unfinished:
                continue
            if not running.done() and not stop.is_set():
                stop.set()
                d = self.store.get_deployment(release_id)
                self._event(d, f"ended ({d.reason}) while its release command ran: stopping the command")
            with self._phase_guard:
                self._phases.pop(release_id, None)

    def close(self) -> None:
        """Kill the release commands still running and end their threads (the daemon is stopping; the
        one that starts next runs each again, as after a crash)."""
        with self._phase_guard:
            phases = list(self._phases.values())
            self._phases.clear()
        for _, stop in phases:
            stop.set()
        self._phase_pool.shutdown(wait=True, cancel_futures=True)

    def free_orphan_locks(self) -> list[Lock]:
        """Free the release locks no release holds (those freed): taken for a test gate by a process that
        ended before it recorded the release (a control plane killed), or left by this one when it could
        not free them (a full disk). Each would otherwise refuse every later release of its environment."""
        freed = []
        for lock in self.store.list_locks():
            with _GATING_GUARD:
                in_gate = (lock.env_id, lock.holder) in _GATING
            if in_gate or (lock.pid != os.getpid() and lock.process_alive()):
                continue
            app, _, env = lock.env_id.partition("/")
            if self.store.list_deployments(app, env, unfinished=True) or not self.store.drop_lock(lock):
                continue
            whose = "this control plane" if lock.pid == os.getpid() else f"pid {lock.pid}, now gone"
            self.store.record_event(
                app,
                env,
                "release.lock_freed",
                f"release lock of {lock.holder} freed: its release was never recorded ({whose})",
            )
            freed.append(lock)
        return freed

    def _advance(self, deployment_id: int) -> Deployment:
        # Each step is persisted before the next runs, so chaining keeps crash safety; without it every
        # step boundary would cost a whole daemon loop interval of a release's duration.
        deployment = self.tick(deployment_id)
        for _ in range(MAX_STEPS_PER_TICK - 1):
            if deployment.state == DONE or "waiting" in deployment.data:
                break
            deployment = self.tick(deployment_id)
        return deployment

    def run(self, deployment_id: int, poll: float = 0.2, timeout: float = 3600.0) -> Deployment:
        """Tick a release until it is done (used when no daemon drives it)."""
        deadline = self.clock() + timeout
        deployment = self.tick(deployment_id)
        while deployment.state != DONE:
            if self.clock() > deadline:
                raise ConflictError(
                    f"release {deployment_id}: still at step {deployment.state} after {timeout:g}s"
                )
            time.sleep(poll)
            deployment = self.tick(deployment_id)
        return deployment

    def active(self, app: str, env: str) -> Deployment | None:
        """The environment's unfinished release, if any."""
        running = self.store.list_deployments(app, env, unfinished=True)
        return running[-1] if running else None

    def run_pass(self) -> None:
        """The daemon's release loop, once: advance every unfinished release, then retire every warm
        fleet whose rollback window has passed, each environment on its own."""
        self.tick_all()
        self.retirement.run()

    def rollback(
        self, app: str, env: str, user: str, to: str | None = None, strategy: str | None = None
    ) -> RollbackResult:
        """Back to the warm old fleet at once if one is kept, else release the earlier version anew
        (by `strategy`, default the manifest's)."""
        with self._warm_lock:
            cancelled = self._cancel_active(app, env, user)
            environment = self.store.get_environment(app, env) or _missing(app, env)
            if (
                cancelled is not None
                and to in (None, environment.current_version)
                and environment.current_version
            ):
                return RollbackResult(instant=True, version=environment.current_version, deployment=cancelled)
            now = self.clock()
            groups = self.fleet.groups(app, env)
            warm = [
                g
                for g in groups.values()
                if g.standby_until is not None and g.standby_until > now and (to is None or g.version == to)
            ]
            if warm:
                target = max(warm, key=lambda g: g.standby_until or 0.0)
                live = [g for g in groups.values() if g.name != target.name and g.weight > 0]
                self.fleet.set_weights(app, env, {target.name: 100, **{g.name: 0 for g in live}})
                self.fleet.set_group(app, env, Group(target.name, target.version, target.capacity, 100))
                for group in live:
                    self.fleet.remove_group(app, env, group.name)
                self._now_serving(
                    user,
                    app,
                    env,
                    "rollback",
                    target.version,
                    f"instant rollback to {target.version} (warm fleet {target.name})",
                )
                return RollbackResult(instant=True, version=target.version)
        version = to or self._previous_version(app, env)
        note = self.retirement.why_not_warm(app, env, version)
        # The version served before: its tests passed then, and a rollback should not wait for them.
        deployment = self.start(
            app, env, version, strategy, user, note=f"rollback to {version}", skip_tests=True
        )
        return RollbackResult(instant=False, version=version, deployment=deployment, note=note)

    def swap(self, app: str, env: str, user: str) -> str:
        """Blue/green: send all traffic to the warm fleet, keeping the live one warm in its place."""
        with self._warm_lock:
            now = self.clock()
            groups = self.fleet.groups(app, env)
            warm = [g for g in groups.values() if g.standby_until is not None and g.standby_until > now]
            live = [g for g in groups.values() if g.weight > 0 and g.standby_until is None]
            if not warm or not live:
                raise UserError(f"{app}/{env}: nothing to swap (no warm fleet kept by a blue/green release)")
            if self.active(app, env) is not None:
                raise ConflictError(f"{app}/{env}: a release is in progress; swap after it finishes")
            standby, current = warm[0], live[0]
            self.fleet.set_weights(app, env, {standby.name: 100, current.name: 0})
            self.fleet.set_group(app, env, Group(standby.name, standby.version, standby.capacity, 100))
            self.fleet.set_group(
                app, env, Group(current.name, current.version, current.capacity, 0, standby.standby_until)
            )
            self._now_serving(
                user,
                app,
                env,
                "swap",
                standby.version,
                f"swap {current.name} ({current.version}) → {standby.name} ({standby.version})",
            )
            return standby.version

    def retire_expired(self, app: str, env: str) -> list[str]:
        """Remove an environment's warm fleets whose rollback window has passed; their names."""
        return self.retirement.expired(app, env)

    def _step(self, deployment: Deployment) -> Step:
        return Step(
            app=deployment.app,
            env=deployment.env,
            version=deployment.version,
            strategy=deployment.strategy,
            data=dict(deployment.data),
            fleet=self.fleet,
            manifest=self.manifests(deployment.app, deployment.version),
            now=self.clock(),
            entered_at=float(deployment.data.get("entered_at", deployment.started_at)),
        )

    def _apply(self, deployment: Deployment, transition: Transition) -> Deployment:
        data = {**deployment.data, **transition.data}
        d = deployment
        if transition.kind == "stay":
            if transition.reason != deployment.data.get("waiting"):
                data["waiting"] = transition.reason
                return self.store.update_deployment(d.id, data=data)
            return deployment
        data.pop("waiting", None)
        data["entered_at"] = self.clock()
        if transition.kind == "to":
            self._event(d, f"{d.state} → {transition.target}: {transition.reason}")
            return self.store.update_deployment(d.id, state=transition.target, step=d.step + 1, data=data)
        if transition.kind == "abort":
            traffic_moved = "analysis" in transition.data
            data["outcome"] = "rolled_back" if traffic_moved else "aborted"
            self._event(d, f"{d.state} → {ABORTING}: {transition.reason}")
            return self.store.update_deployment(
                d.id, state=ABORTING, step=d.step + 1, reason=transition.reason, data=data
            )
        self.store.set_current_version(d.app, d.env, d.version)
        data["manifest_changes"] = self._adopt_manifest(d.app, d.env, d.version)
        return self._done(d, data, "succeeded", transition.reason)

    def _undo(self, deployment: Deployment) -> Deployment:
        d, data = deployment, deployment.data
        new, old = data.get("new"), data.get("old")
        groups = self.fleet.groups(d.app, d.env)
        if old and old in groups:
            kept = groups[old]
            full = int(data.get("full", kept.capacity))
            self.fleet.set_group(d.app, d.env, Group(kept.name, kept.version, max(full, kept.capacity), 100))
            self.fleet.set_weights(d.app, d.env, {old: 100, **({new: 0} if new else {})})
        if new and new in groups:
            self.fleet.remove_group(d.app, d.env, new)
        return self._done(d, dict(data), str(data.get("outcome", "aborted")), d.reason or "aborted")

    def _done(self, d: Deployment, data: dict[str, object], outcome: str, reason: str) -> Deployment:
        now = self.clock()
        duration = now - float(d.data.get("started", d.started_at))
        data["duration"] = round(duration, 3)
        finished = self.store.update_deployment(
            d.id, state=DONE, step=d.step + 1, finished_at=now, outcome=outcome, reason=reason, data=data
        )
        self.store.release_lock(f"{d.app}/{d.env}", str(d.data.get("holder", "")))
        self._event(d, f"release {outcome}: {reason}")
        self._history(
            d.user,
            d.app,
            d.env,
            "deploy",
            d.version,
            f"{d.strategy} release of {d.version}: {outcome} in {duration:.1f}s ({reason})"
            + (f"; {d.data['note']}" if d.data.get("note") else "")
            + "".join(f"\n{line}" for line in _lines(data.get("manifest_changes"))),
        )
        return finished

    def _cancel_active(self, app: str, env: str, user: str) -> Deployment | None:
        active = self.active(app, env)
        if active is None:
            return None
        reason = f"cancelled by {user}'s rollback at step {active.state}"
        data = {**active.data, "outcome": "aborted"}
        self.store.update_deployment(active.id, state=ABORTING, reason=reason, data=data)
        return self._undo(self.store.get_deployment(active.id))

    def _previous_version(self, app: str, env: str) -> str:
        current = (self.store.get_environment(app, env) or _missing(app, env)).current_version
        for deployment in reversed(self.store.list_deployments(app, env)):
            if deployment.outcome == "succeeded" and deployment.version != current:
                return deployment.version
        # A version brought in by `sprout up` rather than a release is only in the audit history.
        for entry in reversed(self.store.list_history(app, env)):
            if entry.version and entry.version != current:
                return entry.version
        raise UserError(f"{app}/{env}: no earlier version to roll back to (use --to vN)")

    def _now_serving(self, user: str, app: str, env: str, action: str, version: str, line: str) -> None:
        """An instant switch made `version` serve: it is current, its manifest applies, history says so."""
        self.store.set_current_version(app, env, version)
        changes = self._adopt_manifest(app, env, version)
        self._history(user, app, env, action, version, "\n".join([line, *changes]))

    def _adopt_manifest(self, app: str, env: str, version: str) -> list[str]:
        return adopt_manifest(self.store, app, env, self.manifests(app, version), version)

    def _event(self, d: Deployment, message: str) -> None:
        self.store.record_event(d.app, d.env, "release.step", f"release {d.id}: {message}", deployment=d.id)

    def _history(self, user: str, app: str, env: str, action: str, version: str, text: str) -> None:
        environment = self.store.get_environment(app, env)
        digest = environment.manifest_hash if environment else None
        self.store.append_history(
            user=user, app=app, env=env, action=action, manifest_hash=digest, version=version, diff_text=text
        )


def _lines(value: object) -> list[str]:
    return [str(line) for line in value] if isinstance(value, list) else []


def _missing(app: str, env: str) -> NoReturn:
    raise NotFoundError(f"{app}/{env}: no such environment (see `sprout status`)")

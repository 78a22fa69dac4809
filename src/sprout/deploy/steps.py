"""The steps releases are made of, and each strategy's path through them.

A step is a function of a `Step` context that returns a `Transition`: go to another step, stay (wait),
finish, or abort. Steps are idempotent: a step that decides something (the next batch's capacities)
writes the decision into the deployment's data and moves to a step that applies it, so a control plane
that dies between the two re-applies the same decision instead of deciding again.

Every strategy is built from one primitive — launch and wait healthy, shift weights, drain:
- `bluegreen`: release → launch (a full fleet of the other colour) → wait healthy → smoke → switch →
  finish; the old colour stays warm, at weight 0, for `rollback_window`.
- `immutable`: the same, but the old fleet is removed at the switch.
- `rolling` / `rolling_with_batch`: batches of `batch_size` move from the old group to the new one;
  `rolling` shrinks the old group first (capacity dips), `rolling_with_batch` grows the new one first.
- `canary`: a small new group takes `steps` percent of traffic in turn; after each `interval` the
  analysis promotes, waits, or rolls back; at 100 the new group is scaled to full size and switched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sprout.deploy.analysis import judge
from sprout.deploy.fleet import Fleet, Group
from sprout.errors import SproutError
from sprout.spec.models import Manifest

#: Intervals a canary step may wait for enough traffic before it is promoted on what it saw.
CANARY_PATIENCE = 3


@dataclass(frozen=True)
class Transition:
    """Where a step leads: `to` another step, `stay` to wait, `finish` or `abort` with a reason."""

    kind: Literal["to", "stay", "finish", "abort"]
    target: str = ""
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def go(target: str, reason: str = "", **data: Any) -> Transition:
    """Move on to step `target`, merging `data` into the deployment's data."""
    return Transition("to", target, reason, data)


def stay(reason: str, **data: Any) -> Transition:
    """Wait on this step."""
    return Transition("stay", "", reason, data)


def finish(reason: str, **data: Any) -> Transition:
    """The release succeeded."""
    return Transition("finish", "", reason, data)


def abort(reason: str, **data: Any) -> Transition:
    """The release failed: undo it (remove the new group, traffic back to the old one)."""
    return Transition("abort", "", reason, data)


@dataclass
class Step:
    """What a step sees: the deployment's identity and data, the fleet, the new version's manifest, now."""

    app: str
    env: str
    version: str
    strategy: str
    data: dict[str, Any]
    fleet: Fleet
    manifest: Manifest
    now: float
    entered_at: float

    @property
    def new(self) -> str:
        """The new group's name."""
        return str(self.data["new"])

    @property
    def old(self) -> str | None:
        """The group that served before the release (None for a first release)."""
        value = self.data.get("old")
        return str(value) if value else None


StepFn = Callable[[Step], Transition]


#: The step that runs the version's release command (which the daemon runs in the background).
RELEASE_STEP = "release"


def release_done(error: SproutError | None) -> Transition:
    """Where the release phase leads once its command ended (`error`: why it failed)."""
    if error is not None:
        return abort(f"release command failed: {error}")
    return go("launch", "release command done")


def _release(step: Step) -> Transition:
    try:
        step.fleet.release(step.app, step.env, step.version)
    except SproutError as exc:
        return release_done(exc)
    return release_done(None)


def _launch(step: Step) -> Transition:
    groups = step.fleet.groups(step.app, step.env)
    live = [g for g in groups.values() if g.weight > 0 and g.standby_until is None]
    old = max(live, key=lambda g: g.weight) if live else None
    new = "green" if old is not None and old.name == "blue" else "blue"
    if new in groups:
        step.fleet.remove_group(step.app, step.env, new)
    # A warm fleet kept for an instant rollback holds the new group's colour: it goes, and this says so.
    warm = groups.get(new)
    replaced: dict[str, Any] = {}
    note = ""
    if warm is not None and warm.standby_until is not None and warm.standby_until > step.now:
        replaced = {"replaced_warm": {"group": warm.name, "version": warm.version}}
        note = f"; warm fleet {warm.name} ({warm.version}) replaced: a rollback to {warm.version} is now a redeploy"
    full = old.capacity if old is not None else step.manifest.instances.initial
    full = max(full, 1)
    batch = min(step.manifest.deploy.batch_size, full)
    first = {
        "bluegreen": full,
        "immutable": full,
        "rolling_with_batch": batch,
        "rolling": batch,
        "canary": max(1, math.ceil(full * step.manifest.deploy.canary.steps[0] / 100)),
    }[step.strategy]
    data = {"new": new, "old": old.name if old else None, "full": full, "new_capacity": first, **replaced}
    if old is None:
        step.fleet.set_group(step.app, step.env, Group(new, step.version, full, 100))
        return go(
            "wait_healthy", f"first release: launching {full} instance(s)", **{**data, "new_capacity": full}
        )
    old_capacity = old.capacity
    if step.strategy == "rolling":
        old_capacity = max(old.capacity - batch, 0)
        step.fleet.set_group(
            step.app, step.env, Group(old.name, old.version, old_capacity, max(old_capacity, 1))
        )
    step.fleet.set_group(step.app, step.env, Group(new, step.version, first, 0))
    return go(
        "wait_healthy",
        f"launching {first} instance(s) of {step.version} in group {new}{note}",
        **data,
        old_capacity=old_capacity,
    )


def _wait_healthy(step: Step) -> Transition:
    health = step.fleet.health(step.app, step.env, step.new, float(step.data.get("started", step.entered_at)))
    timeout = step.manifest.deploy.health_timeout
    path = step.manifest.health.path
    if health.failed:
        return abort(f"new instances failed the health check {path}: {health.failure or 'instance exited'}")
    if step.now - step.entered_at > timeout:
        return abort(
            f"new instances not healthy on {path} after {timeout:g}s "
            f"({health.healthy}/{health.desired} healthy): {health.failure or 'no answer'}"
        )
    if not health.ready:
        return stay(f"{health.healthy}/{health.desired} healthy")
    following = {
        "bluegreen": "smoke",
        "immutable": "smoke",
        "rolling": "batch_done",
        "rolling_with_batch": "batch_done",
        "canary": "canary_shift" if step.data.get("canary_index", 0) < _last_index(step) else "smoke",
    }[step.strategy]
    if step.old is None:
        following = "finish"
    return go(following, f"{health.healthy}/{health.desired} healthy")


def _smoke(step: Step) -> Transition:
    path = step.manifest.deploy.smoke_path
    if path:
        failure = step.fleet.smoke(step.app, step.env, step.new, path)
        if failure:
            return abort(f"smoke test {path} failed: {failure}")
    return go("switch", f"smoke test {path} passed" if path else "no smoke test")


def _switch(step: Step) -> Transition:
    old = step.old
    assert old is not None
    step.fleet.set_weights(step.app, step.env, {old: 0, step.new: 100})
    groups = step.fleet.groups(step.app, step.env)
    if step.strategy == "immutable" or step.manifest.deploy.rollback_window <= 0:
        step.fleet.remove_group(step.app, step.env, old)
    elif old in groups:
        kept = groups[old]
        until = step.now + step.manifest.deploy.rollback_window
        step.fleet.set_group(step.app, step.env, Group(kept.name, kept.version, kept.capacity, 0, until))
    return go("finish", f"100% of traffic on {step.version}", switched_at=step.now)


def _batch_done(step: Step) -> Transition:
    """A rolling batch is healthy: give it traffic, shrink the old group, decide the next batch."""
    old = step.old
    assert old is not None
    full, batch = int(step.data["full"]), step.manifest.deploy.batch_size
    new_capacity = int(step.data["new_capacity"])
    old_capacity = int(step.data.get("old_capacity", full))
    if step.strategy == "rolling_with_batch":
        old_capacity = max(min(old_capacity, full - new_capacity), 0)
    if new_capacity >= full:
        step.fleet.set_weights(step.app, step.env, {old: 0, step.new: 100})
        step.fleet.remove_group(step.app, step.env, old)
        return go("finish", f"all {full} instance(s) on {step.version}", switched_at=step.now)
    next_new = min(new_capacity + batch, full)
    next_old = max(old_capacity - batch, 0) if step.strategy == "rolling" else old_capacity
    return go(
        "apply_batch",
        f"{new_capacity}/{full} on {step.version}",
        new_capacity=next_new,
        old_capacity=next_old,
        serving_new=new_capacity,
    )


def _apply_batch(step: Step) -> Transition:
    old = step.old
    assert old is not None
    groups = step.fleet.groups(step.app, step.env)
    old_capacity = int(step.data["old_capacity"])
    serving_new = int(step.data.get("serving_new", 0))
    step.fleet.set_weights(step.app, step.env, {old: old_capacity, step.new: serving_new})
    if old in groups:
        kept = groups[old]
        step.fleet.set_group(step.app, step.env, Group(kept.name, kept.version, old_capacity, old_capacity))
    step.fleet.set_group(
        step.app, step.env, Group(step.new, step.version, int(step.data["new_capacity"]), serving_new)
    )
    return go("wait_healthy", f"batch: {step.data['new_capacity']} new, {old_capacity} old")


def _last_index(step: Step) -> int:
    return len(step.manifest.deploy.canary.steps) - 1


def _canary_shift(step: Step) -> Transition:
    old = step.old
    assert old is not None
    index = int(step.data.get("canary_index", 0))
    weight = step.manifest.deploy.canary.steps[index]
    step.fleet.set_weights(step.app, step.env, {old: 100 - weight, step.new: weight})
    snapshots = step.fleet.metrics(step.app, step.env)
    return go(
        "canary_analyze",
        f"canary at {weight}%",
        canary_index=index,
        baseline={old: snapshots.get(old), step.new: snapshots.get(step.new)},
    )


def _canary_analyze(step: Step) -> Transition:
    old = step.old
    assert old is not None
    rules = step.manifest.deploy.canary
    if step.now - step.entered_at < rules.interval:
        return stay(f"analysing canary at {rules.steps[int(step.data['canary_index'])]}%")
    snapshots = step.fleet.metrics(step.app, step.env)
    baseline = step.data.get("baseline") or {}
    empty = {"requests": {"total": 0}, "latency": {"buckets": {}}}
    canary = step.fleet.window(
        step.app, step.env, step.new, baseline.get(step.new), snapshots.get(step.new) or empty
    )
    stable = step.fleet.window(step.app, step.env, old, baseline.get(old), snapshots.get(old) or empty)
    verdict = judge(canary, stable, rules)
    if verdict.outcome == "rollback" and verdict.signal == "latency" and not step.data.get("slow_once"):
        # A second interval from a fresh baseline: a real regression shows again, a one-off spike does not.
        return go(
            "canary_analyze",
            f"second look after a slow interval: {verdict.reason}",
            baseline={old: snapshots.get(old), step.new: snapshots.get(step.new)},
            slow_once=True,
        )
    if verdict.outcome == "rollback":
        return abort(f"canary analysis: {verdict.reason}", analysis=verdict.reason)
    if verdict.outcome == "wait" and step.now - step.entered_at < rules.interval * CANARY_PATIENCE:
        return stay(verdict.reason)
    reason = (
        verdict.reason if verdict.outcome == "promote" else f"promoted on little traffic: {verdict.reason}"
    )
    index = int(step.data["canary_index"]) + 1
    if index < _last_index(step):
        return go("canary_shift", reason, canary_index=index, analysis=reason, slow_once=False)
    step.fleet.set_group(
        step.app, step.env, Group(step.new, step.version, int(step.data["full"]), rules.steps[index - 1])
    )
    return go(
        "wait_healthy",
        f"{reason}; scaling canary to full size",
        canary_index=index,
        new_capacity=step.data["full"],
        analysis=reason,
    )


def _finish(step: Step) -> Transition:
    return finish(f"{step.version} serves 100% of traffic")


STEPS: dict[str, StepFn] = {
    RELEASE_STEP: _release,
    "launch": _launch,
    "wait_healthy": _wait_healthy,
    "smoke": _smoke,
    "switch": _switch,
    "batch_done": _batch_done,
    "apply_batch": _apply_batch,
    "canary_shift": _canary_shift,
    "canary_analyze": _canary_analyze,
    "finish": _finish,
}
FIRST_STEP = "release"

"""Blue/green and canary deploys on AWS primitives, as a resumable state machine.

The steps, in order, each saved before the next runs (so a crashed or interrupted deploy resumes
where it stopped): upload the bundle to S3 → a new launch template version for the idle colour →
with an `[app] release` command, one instance from that version runs it once and reports (a failure
stops the deploy, weights untouched; see `release`) → scale the idle group to the live size → wait until its instances are InService and healthy targets
→ shift the listener weights (0/100 at once, or the canary steps with CloudWatch analysis between) →
wait the deregistration delay → keep the old colour for the rollback window → scale it to 0 (and move
the scheduled actions to the new live colour). A health timeout aborts before any weight moves.
`rollback` shifts the weights back while the old colour is warm, or runs a reverse deploy after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sprout.bundle import ArtifactStore
from sprout.deploy.analysis import Verdict, judge
from sprout.deploy.steps import CANARY_PATIENCE
from sprout.errors import BundleError, ConflictError, NotFoundError
from sprout.providers.aws.canary import window
from sprout.providers.aws.context import Colour, other
from sprout.providers.aws.deploystate import DeployState, S3StateStore, Step
from sprout.providers.aws.fleetapi import AwsFleet, Size
from sprout.providers.aws.release import result_key
from sprout.providers.aws.releasefleet import aws_sized
from sprout.providers.aws.wheels import Runtime
from sprout.spec import Manifest
from sprout.spec.models import CanaryAnalysis


@dataclass(frozen=True)
class Timing:
    """The manifest's `[deploy]` durations that pace a deploy."""

    drain: float
    rollback_window: float
    health_timeout: float
    canary: CanaryAnalysis

    @classmethod
    def of(cls, manifest: Manifest) -> Timing:
        """The timing of a manifest; an unset health timeout is AWS-sized (a boot takes minutes)."""
        d = aws_sized(manifest).deploy
        return cls(d.drain, d.rollback_window, d.health_timeout, d.canary)


class Deployer:
    """Drives deployments of one environment; `advance` does one step (or one wait check) and saves."""

    def __init__(
        self,
        fleet: AwsFleet,
        states: S3StateStore,
        artifacts: ArtifactStore,
        timing: Timing,
        cloudwatch: Any = None,
        clock: Callable[[], float] = time.time,
        runtime: Runtime | None = None,
        release_command: str | None = None,
    ) -> None:
        self.fleet = fleet
        self.states = states
        self.artifacts = artifacts
        self.timing = timing
        self.cloudwatch = cloudwatch
        self.clock = clock
        self.runtime = runtime
        self.release_command = release_command

    def _save(self, state: DeployState) -> DeployState:
        self.states.save(state)
        return state

    def start(
        self, app: str, env: str, sha256: str, strategy: str, bundle: Path | None = None
    ) -> DeployState:
        """Begin deploying bundle `sha256` to the idle colour; refuses while another deploy is active."""
        current = self.states.load()
        if current is not None and current.active:
            raise ConflictError(
                f"{app}/{env}: deployment {current.id} is {current.status} at step {current.step}; "
                "resume it with `sprout aws deploy --resume` or undo it with `sprout aws rollback`"
            )
        if bundle is not None:
            stored = self.artifacts.put(bundle)
            if stored != sha256:
                raise BundleError(f"{bundle}: hashes to {stored}, not {sha256}; pack it again")
        now = self.clock()
        source = self.fleet.live()
        state = DeployState(
            id=f"d-{int(now * 1000)}",
            app=app,
            env=env,
            sha256=sha256,
            strategy="canary" if strategy == "canary" else "bluegreen",
            source=source,
            target=other(source),
            step_started=now,
            canary_index=-1,
            previous_sha256=self.fleet.bundle_of(source),
        )
        return self._save(
            state.noted(now, f"deploy {sha256[:12]}: {source} is live, {other(source)} takes over")
        )

    def advance(self, state: DeployState) -> DeployState:
        """Run the current step once; return (and save) the state it leads to."""
        if not state.active:
            return state
        handler: Callable[[DeployState, float], DeployState] = getattr(self, f"_step_{state.step}")
        return self._save(handler(state, self.clock()))

    def run(
        self,
        state: DeployState,
        poll: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        report: Callable[[DeployState], None] | None = None,
        through_hold: bool = True,
    ) -> DeployState:
        """Advance until the deploy ends (or, with `through_hold` False, until it holds the old colour)."""
        while state.active and (through_hold or state.status != "holding"):
            before = (state.step, len(state.events))
            state = self.advance(state)
            if report is not None and (state.step, len(state.events)) != before:
                report(state)
            if state.active and (state.step, len(state.events)) == before:
                sleep(poll)
        return state

    # The steps: each returns the next state and never moves traffic before the target is healthy.

    def _step_upload(self, s: DeployState, now: float) -> DeployState:
        if not self.artifacts.exists(s.sha256):
            return self._fail(s, now, f"bundle {s.sha256[:12]} is not in {self.artifacts.url}; push it again")
        return s.moved("launch", now, f"bundle {s.sha256[:12]} is in {self.artifacts.url}")

    def _step_launch(self, s: DeployState, now: float) -> DeployState:
        version = self.fleet.launch_version(s.target, s.sha256, self.runtime)
        following: Step = "release" if self.release_command else "scale_up"
        return s.moved(
            following, now, f"{s.target}: launch template version {version}", launch_version=version
        )

    def _step_release(self, s: DeployState, now: float) -> DeployState:
        instance = self.fleet.run_release(s.target, s.launch_version or 0, result_key(s.env, s.id))
        return s.moved(
            "wait_release",
            now,
            f"release: `{self.release_command}` runs once on {instance}",
            release_instance=instance,
        )

    def _step_wait_release(self, s: DeployState, now: float) -> DeployState:
        found = self.states.read_json(result_key(s.env, s.id))
        if found is None:
            if now - s.step_started < self.timing.health_timeout:
                return s
            self.fleet.terminate(s.release_instance)
            return self._fail(
                s,
                now,
                f"release: no result from {s.release_instance} after {self.timing.health_timeout:g}s "
                f"(its boot log is the stream {s.release_instance}/boot); weights unchanged",
            )
        self.fleet.terminate(s.release_instance)
        code, seconds = int(found["exit_code"]), float(found["seconds"])
        if code != 0:
            # The command's own last lines; Sprout's bootstrap lines ("[sprout] …") say nothing about why.
            tail = " | ".join(
                [line for line in found.get("tail", []) if not line.startswith("[sprout]")][-5:]
            )
            return self._fail(
                s,
                now,
                f"release `{found['command']}` exited {code} on {s.release_instance}: {tail}; weights unchanged",
            )
        return s.moved(
            "scale_up",
            now,
            f"release `{found['command']}` exited 0 in {seconds:.1f}s; {s.release_instance} terminated",
        )

    def _step_scale_up(self, s: DeployState, now: float) -> DeployState:
        live = self.fleet.size(s.source)
        size = Size(live.min, live.max, max(live.desired, 1))
        self.fleet.resize(s.target, size)
        return s.moved(
            "wait_healthy", now, f"{s.target}: scaled to {size.desired} (min {size.min}, max {size.max})"
        )

    def _step_wait_healthy(self, s: DeployState, now: float) -> DeployState:
        health = self.fleet.health(s.target)
        if health.ready:
            return s.moved(
                "shift", now, f"{s.target}: {health.healthy}/{health.desired} InService and healthy"
            )
        if now - s.step_started < self.timing.health_timeout:
            return s
        problems = "; ".join(health.problems) or "no targets registered"
        self._scale_down(s.target)
        return self._fail(
            s,
            now,
            f"{s.target} not healthy after {self.timing.health_timeout:g}s "
            f"({health.in_service} InService, {health.healthy}/{health.desired} healthy: {problems}); "
            "weights unchanged",
        )

    def _step_shift(self, s: DeployState, now: float) -> DeployState:
        if s.strategy != "canary":
            self.fleet.set_weights({s.target: 100, s.source: 0})
            return s.moved("drain", now, f"weights: {s.target} 100, {s.source} 0")
        steps = self.timing.canary.steps
        if s.canary_index >= 0 and steps[s.canary_index] == 100:
            return s.moved("drain", now, f"canary promoted: {s.target} takes all traffic")
        if s.canary_index >= 0:
            waited = now - s.step_started
            if waited < self.timing.canary.interval:
                return s
            verdict = self._judge(s, now)
            if verdict.outcome == "rollback":
                self.fleet.set_weights({s.source: 100, s.target: 0})
                self._scale_down(s.target)
                return s.moved(
                    "finished",
                    now,
                    f"canary rolled back: {verdict.reason}",
                    status="rolled_back",
                    reason=verdict.reason,
                )
            if verdict.outcome == "wait" and waited < CANARY_PATIENCE * self.timing.canary.interval:
                return s
            s = s.noted(now, f"canary step {steps[s.canary_index]}%: {verdict.outcome} ({verdict.reason})")
        weight = steps[s.canary_index + 1]
        self.fleet.set_weights({s.target: weight, s.source: 100 - weight})
        return s.moved(
            "shift",
            now,
            f"weights: {s.target} {weight}, {s.source} {100 - weight}",
            canary_index=s.canary_index + 1,
        )

    def _judge(self, s: DeployState, now: float) -> Verdict:
        refs = self.fleet.refs
        canary = window(self.cloudwatch, refs.listener_arn, refs.target_groups[s.target], s.step_started, now)
        stable = window(self.cloudwatch, refs.listener_arn, refs.target_groups[s.source], s.step_started, now)
        return judge(canary, stable, self.timing.canary)

    def _step_drain(self, s: DeployState, now: float) -> DeployState:
        if now - s.step_started < self.timing.drain:
            return s
        return s.moved(
            "hold",
            now,
            f"{s.source} drained; kept warm for {self.timing.rollback_window:g}s",
            status="holding",
        )

    def _step_hold(self, s: DeployState, now: float) -> DeployState:
        if now - s.step_started < self.timing.rollback_window:
            return s
        return s.moved("retire", now, f"rollback window over; retiring {s.source}", status="running")

    def _step_retire(self, s: DeployState, now: float) -> DeployState:
        self._scale_down(s.source)
        moved = self.fleet.move_schedule(s.source, s.target)
        return s.moved(
            "finished",
            now,
            f"{s.source}: scaled to 0; {moved} scheduled action(s) moved to {s.target}",
            status="done",
        )

    def _scale_down(self, colour: Colour) -> None:
        size = self.fleet.size(colour)
        self.fleet.resize(colour, Size(0, size.max, 0))

    def _fail(self, s: DeployState, now: float, reason: str) -> DeployState:
        return s.moved("finished", now, f"failed: {reason}", status="failed", reason=reason)

    def rollback(self) -> DeployState:
        """Undo the latest deploy: weights back while the old colour is warm, else a reverse deploy."""
        s = self.states.load()
        if s is None:
            raise NotFoundError("nothing to roll back: this environment has no AWS deployment yet")
        now = self.clock()
        if s.active:
            self.fleet.set_weights({s.source: 100, s.target: 0})
            self._scale_down(s.target)
            return self._save(
                s.moved(
                    "finished",
                    now,
                    f"rolled back: weights {s.source} 100, {s.target} 0",
                    status="rolled_back",
                    reason="rollback requested",
                )
            )
        if s.status != "done":
            raise ConflictError(
                f"deployment {s.id} ended {s.status}; {s.source} still serves, nothing to roll back"
            )
        # The old colour's group still points at its launch template version: bring it back and swap.
        reverse = replace(
            s,
            id=f"d-{int(now * 1000)}",
            strategy="bluegreen",
            source=s.target,
            target=s.source,
            sha256=s.previous_sha256,
            previous_sha256=s.sha256,
            step="upload",
            status="running",
            canary_index=-1,
            events=[],
        )
        reverse = reverse.moved("scale_up", now, f"rollback of {s.id}: {s.source} comes back")
        return self._save(reverse)

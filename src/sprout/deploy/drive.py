"""Driving one release to its end in the foreground, for providers no Sprout daemon runs for (AWS, Kubernetes).

The command that started (or resumes) a release ticks the engine itself and prints each step's event as
it is recorded; every step is persisted before the next runs, so a command that dies mid-way leaves a
release that a re-run resumes where it stood.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sprout.deploy.engine import DONE, ReleaseEngine
from sprout.state.models import Deployment

STEP_EVENTS = ("release.start", "release.step")


def drive(
    engine: ReleaseEngine,
    deployment: Deployment,
    report: Callable[[str], None],
    poll: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Deployment:
    """Tick `deployment` until it is done, reporting its events; wait `poll` seconds while a step waits."""
    seen = 0
    while True:
        for event in engine.store.list_events(deployment.app, deployment.env, limit=50):
            if (
                event.id > seen
                and event.kind in STEP_EVENTS
                and event.data.get("deployment") == deployment.id
            ):
                report(event.message)
                seen = event.id
        if deployment.state == DONE:
            return deployment
        if "waiting" in deployment.data:
            sleep(poll)
        deployment = engine.tick(deployment.id)

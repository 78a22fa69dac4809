"""The daemon's `/metrics` families read the state store and the loops' reports as they are at scrape time."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sprout.controlplane.metrics import daemon_registry
from sprout.loops import LoopHealth
from sprout.state import StateStore


def test_release_outcomes_and_loop_health_are_counted(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    outcomes = ["succeeded", "succeeded", "rolled_back", None]
    for outcome in outcomes:
        deployment = store.create_deployment("shop", "production", "v1", "rolling", "ana")
        if outcome is not None:
            store.update_deployment(deployment.id, state="done", outcome=outcome, finished_at=time.time())
    now = time.time()
    loops = [
        LoopHealth("reconcile", 1.0, now - 2.0, None, None, 0, False),
        LoopHealth("releases", 1.0, None, "OSError: disk", now, 4, True),
    ]
    registry = daemon_registry(store, lambda: loops)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    where = (("app", "shop"), ("env", "production"))
    assert samples[("sprout_daemon_releases_total", (*where, ("outcome", "succeeded")))] == 2
    assert samples[("sprout_daemon_releases_total", (*where, ("outcome", "rolled_back")))] == 1
    assert samples[("sprout_daemon_releases_in_progress", where)] == 1
    assert samples[("sprout_daemon_loop_stalled", (("loop", "releases"),))] == 1
    assert samples[("sprout_daemon_loop_stalled", (("loop", "reconcile"),))] == 0
    assert samples[("sprout_daemon_loop_failures", (("loop", "releases"),))] == 4
    assert 2.0 <= samples[("sprout_daemon_loop_last_pass_age_seconds", (("loop", "reconcile"),))] < 60
    # A loop that never passed has no age (rather than a made-up one).
    assert ("sprout_daemon_loop_last_pass_age_seconds", (("loop", "releases"),)) not in samples
    store.close()

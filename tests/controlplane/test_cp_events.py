"""`GET /v1/events` filters by app, env, time and kind (the benches and `up` ask for one kind)."""

from __future__ import annotations

from pathlib import Path

from sprout.controlplane.controller import Controller
from sprout.paths import Home
from sprout.state import StateStore


def test_events_filter_by_kind(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.record_event("shop", "production", "scale", "desired capacity 1 → 3")
    store.record_event("shop", "production", "instance.launch", "launched i-1")
    store.record_event("other", "production", "scale", "desired capacity 2 → 1")
    # Only the state store is used by this route: the other collaborators stay unset.
    controller = Controller(Home(tmp_path), store, *([None] * 10))  # type: ignore[arg-type]
    found = controller.events({"app": "shop", "env": "production", "kind": "scale"})["events"]
    assert [e["message"] for e in found] == ["desired capacity 1 → 3"]
    assert len(controller.events({"app": "shop"})["events"]) == 2

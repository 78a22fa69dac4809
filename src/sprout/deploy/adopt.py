"""A release's manifest becomes the environment's: what `deploy` applies besides the version itself."""

from __future__ import annotations

from sprout.plan.planner import desired_capacity, settings_changes
from sprout.spec.models import Manifest
from sprout.state.store import StateStore


def adopt_manifest(store: StateStore, app: str, env: str, manifest: Manifest, version: str) -> list[str]:
    """Make `app/env` run with `version`'s manifest, as `sprout up` of its folder would; the changes in
    `plan`'s words (settings, then the desired size kept within the new bounds)."""
    environment = store.get_environment(app, env)
    if environment is None or environment.manifest_hash == manifest.digest():
        return []
    changes = [change.describe() for change in settings_changes(environment.manifest, manifest)]
    store.upsert_environment(app, env, manifest, environment.app_dir)
    capacity = desired_capacity(manifest, environment)
    if capacity != environment.desired_capacity:
        store.set_desired_capacity(app, env, capacity, f"{version}'s manifest")
        changes.append(f"~ desired capacity: {environment.desired_capacity} → {capacity}")
    return changes

"""Releases on Kubernetes through the one release engine, as `sprout k8s deploy` and `rollback` run them.

The engine's record of an environment's releases (deployments, lock, events, history) lives in a state
store of the app's namespace of its own (in the Sprout home; never the local daemon's, whose release
loop would drive them on this machine); its versions keep the labels `sprout push` gave them, so the
pods' version label is the pushed one.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sprout.deploy.engine import ReleaseEngine
from sprout.errors import UserError
from sprout.paths import Home
from sprout.providers.kubernetes.context import Names, RenderContext
from sprout.providers.kubernetes.fleet import ClusterApi, GateOf, KubernetesFleet
from sprout.state import StateStore
from sprout.state.models import Version


def release_store(home: Home, names: Names) -> StateStore:
    """The state store of the releases of one app in one namespace."""
    folder = home.root / "k8s"
    folder.mkdir(mode=0o700, exist_ok=True)
    return StateStore(folder / f"{names.namespace}.{names.app}.db")


@dataclass
class KubernetesReleases:
    """The release engine of one environment in a cluster, over its colour Deployments."""

    engine: ReleaseEngine
    fleet: KubernetesFleet
    store: StateStore


def releases(
    cluster: ClusterApi,
    store: StateStore,
    base: RenderContext,
    gate: GateOf,
    clock: Callable[[], float] = time.time,
) -> KubernetesReleases:
    """The engine over `cluster`; each version renders as `base` does, with its own bundle and manifest."""
    app = base.manifest.app.name

    def version(label: str) -> Version:
        found = store.get_version(app, label)
        if found is None:
            raise UserError(f"k8s: {app} {label} was never released in namespace {base.namespace}")
        return found

    def context_of(label: str) -> RenderContext:
        found = version(label)
        return replace(
            base,
            manifest=found.manifest,
            version=label,
            bundle_sha256=found.sha256,
            store_url=found.store_url or base.store_url,
        )

    fleet = KubernetesFleet(cluster, base.names, context_of, gate)
    engine = ReleaseEngine(store, fleet, lambda _app, label: version(label).manifest, clock)
    return KubernetesReleases(engine, fleet, store)


def record(releases: KubernetesReleases, ctx: RenderContext, app_dir: Path) -> None:
    """Record `ctx`'s version under its pushed label; on the environment's first release here, the
    environment too, with the version its live colour serves (`sprout k8s apply` put it there) as the
    current one, so a rollback can go back to it."""
    store, app = releases.store, ctx.manifest.app.name
    store.add_version(app, ctx.bundle_sha256, 0, ctx.manifest, ctx.store_url, label=ctx.version)
    if store.get_environment(app, ctx.env) is not None:
        return
    store.upsert_environment(app, ctx.env, ctx.manifest, app_dir)
    live = [g for g in releases.fleet.groups(app, ctx.env).values() if g.weight > 0]
    sha256 = releases.fleet.bundle_of(live[0].name) if live else None
    if not live or sha256 is None:
        return
    # Its bundle is in the store the new version comes from (one store per app, as `sprout push` keeps).
    store.add_version(app, sha256, 0, ctx.manifest, ctx.store_url, label=live[0].version)
    store.set_current_version(app, ctx.env, live[0].version)
    store.append_history(
        user=getpass.getuser(),
        app=app,
        env=ctx.env,
        action="adopt",
        manifest_hash=ctx.manifest.digest(),
        version=live[0].version,
        diff_text=f"{live[0].name} serves {live[0].version} (from `sprout k8s apply`) before the first release",
    )

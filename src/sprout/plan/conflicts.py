"""Host names another environment already serves: refused before a plan is made, naming that environment.

The router gives a host name to one route only; an apply that claimed a served name would leave the
new environment without traffic. `validate`, `plan` and `up` (in the CLI and in the daemon's apply)
all ask here first, so the mistake is reported as a manifest error (exit 2) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sprout.errors import ManifestError
from sprout.spec import Manifest
from sprout.spec.rules import PRODUCTION, host_key, served_hosts
from sprout.state import StateStore


@dataclass(frozen=True)
class HostConflict:
    """One host name of the manifest that another environment serves."""

    host: str
    owner: str

    def describe(self, env: str) -> str:
        """The problem and the fix, as one manifest error line."""
        where = "" if env == PRODUCTION else f" (as environment {env} serves it)"
        return (
            f'router.hosts: "{self.host}"{where} is already served by {self.owner}; '
            f"choose another host name, or stop {self.owner} first with `sprout down`"
        )


def host_conflicts(store: StateStore, manifest: Manifest, env: str) -> list[HostConflict]:
    """The host names `manifest` would serve as `env` that another recorded environment serves."""
    wanted = {host_key(host): host for host in served_hosts(env, manifest.hosts)}
    found: list[HostConflict] = []
    for other in store.list_environments():
        if (other.app, other.name) == (manifest.app.name, env):
            continue
        for host in served_hosts(other.name, other.manifest.hosts):
            mine = wanted.pop(host_key(host), None)
            if mine is not None:
                found.append(HostConflict(mine, other.id))
    return found


def refuse_host_conflicts(store: StateStore, manifest: Manifest, env: str, source: str) -> None:
    """Raise a ManifestError (exit 2) naming every host of `manifest` another environment serves."""
    found = host_conflicts(store, manifest, env)
    if found:
        raise ManifestError(source, [conflict.describe(env) for conflict in found])


def refuse_host_conflicts_at(state_db: Path, manifest: Manifest, env: str, source: str) -> None:
    """`refuse_host_conflicts` against the state store at `state_db`; no store yet, nothing to conflict."""
    if not state_db.exists():
        return
    store = StateStore(state_db)
    try:
        refuse_host_conflicts(store, manifest, env, source)
    finally:
        store.close()

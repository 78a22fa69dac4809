"""An environment's desired target groups: the ones a release recorded, else one implicit group "blue".

Without a release in progress (or a warm fleet kept for rollback) an environment is one group that runs
its current version at its desired capacity with all the traffic. The release engine records explicit
groups (blue/green/canary) when it needs more than one; the reconcile loop serves both the same way.
"""

from __future__ import annotations

from sprout.state import Environment, Instance, StateStore
from sprout.state.models import Group

DEFAULT_GROUP = "blue"


def desired_groups(store: StateStore, env: Environment) -> list[Group]:
    """The groups an environment should run, by name."""
    recorded = store.list_groups(env.app, env.name)
    if recorded:
        return recorded
    if env.current_version is None:
        return []
    return [Group(DEFAULT_GROUP, env.current_version, env.desired_capacity, 100)]


def group_of(instance: Instance) -> str:
    """The group an instance belongs to (instances recorded before groups existed are "blue")."""
    return instance.group_name or DEFAULT_GROUP

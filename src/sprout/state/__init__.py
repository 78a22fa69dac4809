"""The state store: apps, environments, versions, instances, deployments, events and the audit history."""

from sprout.state.ids import new_instance_id
from sprout.state.models import (
    Deployment,
    Environment,
    Event,
    HistoryEntry,
    Instance,
    InstanceHealth,
    InstanceState,
    Version,
)
from sprout.state.store import StateStore

__all__ = [
    "Deployment",
    "Environment",
    "Event",
    "HistoryEntry",
    "Instance",
    "InstanceHealth",
    "InstanceState",
    "StateStore",
    "Version",
    "new_instance_id",
]

"""What the release engine needs from the platform: target groups of instances, weights, health, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sprout.state.models import Group

__all__ = ["Fleet", "Group", "GroupHealth"]


@dataclass(frozen=True)
class GroupHealth:
    """A group's instances as observed now."""

    desired: int
    healthy: int
    launching: int
    failed: int
    failure: str | None = None

    @property
    def ready(self) -> bool:
        """Every desired instance is healthy."""
        return self.healthy >= self.desired and self.failed == 0


class Fleet(Protocol):
    """Desired groups go in; the reconcile loop launches, drains and routes; health and metrics come out."""

    def groups(self, app: str, env: str) -> dict[str, Group]:
        """The environment's desired groups by name."""
        ...

    def set_group(self, app: str, env: str, group: Group) -> None:
        """Create or change a desired group (launches or drains instances to match)."""
        ...

    def remove_group(self, app: str, env: str, name: str) -> None:
        """Take a group out of the router and drain and stop its instances."""
        ...

    def set_weights(self, app: str, env: str, weights: Mapping[str, int]) -> None:
        """Change traffic weights now, in the router and in desired state."""
        ...

    def health(self, app: str, env: str, name: str, since: float) -> GroupHealth:
        """How many of a group's instances are healthy; failures count those launched after `since`."""
        ...

    def metrics(self, app: str, env: str) -> dict[str, Mapping[str, Any]]:
        """The router's monotonic counters per group (`/metrics.json` group snapshots)."""
        ...

    def smoke(self, app: str, env: str, name: str, path: str) -> str | None:
        """GET `path` on every instance of a group; the first failure described, or None."""
        ...

    def release(self, app: str, env: str, version: str) -> None:
        """Run the version's release command once (migrations); raise on failure."""
        ...

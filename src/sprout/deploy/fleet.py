"""What the release engine needs from the platform: target groups of instances, weights, health, metrics."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, get_args

from sprout.deploy.analysis import Window
from sprout.deploy.gate import GateResult
from sprout.spec.models import Strategy
from sprout.state.models import Group

__all__ = ["STRATEGIES", "Fleet", "Group", "GroupHealth"]

#: Every release strategy the engine knows (`deploy/steps.py`).
STRATEGIES: tuple[str, ...] = get_args(Strategy)


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
    """The seam each provider implements for the release engine: groups of instances at a version go
    in (launched, drained, stopped by the provider), traffic weights are set, health and metrics come out."""

    #: The strategies this provider can carry out; any other is refused before a release starts.
    strategies: tuple[str, ...]

    def refusal(self, strategy: str) -> str:
        """Why `strategy` cannot run here and which strategy to use instead."""
        ...

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
        """A snapshot of each group's traffic now (kept by the engine as an analysis interval's start)."""
        ...

    def window(
        self, app: str, env: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
    ) -> Window:
        """A group's traffic between two of its snapshots (`before` None: since it was launched)."""
        ...

    def smoke(self, app: str, env: str, name: str, path: str) -> str | None:
        """GET `path` on every instance of a group; the first failure described, or None."""
        ...

    def release(self, app: str, env: str, version: str, stop: threading.Event | None = None) -> None:
        """Run the version's release command once (migrations); raise on failure. `stop` is set when
        the release ended meanwhile (a rollback, `sprout down`) or the daemon stops: the command is then
        killed."""
        ...

    def test(self, app: str, env: str, version: str) -> GateResult:
        """Run the version's test gate where this provider runs one-offs (before anything is uploaded)."""
        ...

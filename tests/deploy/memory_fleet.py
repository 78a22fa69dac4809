"""An in-memory Fleet for the release engine's unit tests: groups boot after a few health looks."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from sprout.deploy.analysis import Window
from sprout.deploy.fleet import STRATEGIES, Group, GroupHealth
from sprout.deploy.gate import GateResult
from sprout.errors import SproutError
from sprout.router.metrics import Stats


class MemoryFleet:
    """Desired groups kept in memory; instances become healthy `boot_looks` health looks after a change."""

    strategies = STRATEGIES

    def __init__(
        self,
        boot_looks: int = 2,
        bad: frozenset[str] = frozenset(),
        error_rate: Mapping[str, float] | None = None,
        latency: Mapping[str, float] | None = None,
    ) -> None:
        self.boot_looks = boot_looks
        self.bad = bad
        self.error_rate = dict(error_rate or {})
        #: Seconds each version's requests take (0.01 when not named); tests may change it between ticks.
        self.latency = dict(latency or {})
        self.state: dict[str, Group] = {}
        self.looks: dict[str, list[int]] = {}
        self.stats: dict[str, Stats] = {}
        self.weight_log: list[dict[str, int]] = []
        self.releases: list[str] = []
        self.failing_release: set[str] = set()

    def groups(self, app: str, env: str) -> dict[str, Group]:
        return dict(self.state)

    def set_group(self, app: str, env: str, group: Group) -> None:
        before = self.state.get(group.name)
        looks = [] if before is None or before.version != group.version else self.looks[group.name]
        self.looks[group.name] = (looks + [0] * group.capacity)[: group.capacity]
        self.state[group.name] = group

    def remove_group(self, app: str, env: str, name: str) -> None:
        self.state.pop(name, None)
        self.looks.pop(name, None)

    def set_weights(self, app: str, env: str, weights: Mapping[str, int]) -> None:
        for name, weight in weights.items():
            if name in self.state:
                g = self.state[name]
                self.state[name] = Group(g.name, g.version, g.capacity, weight, g.standby_until)
        self.weight_log.append({n: g.weight for n, g in self.state.items()})

    def health(self, app: str, env: str, name: str, since: float) -> GroupHealth:
        group = self.state[name]
        if group.version in self.bad:
            return GroupHealth(group.capacity, 0, group.capacity, 0, "GET / answered 500")
        self.looks[name] = [n + 1 for n in self.looks[name]]
        healthy = sum(1 for n in self.looks[name] if n > self.boot_looks)
        return GroupHealth(group.capacity, healthy, group.capacity - healthy, 0)

    def serving(self) -> int:
        """Healthy instances in groups that receive traffic."""
        return sum(
            sum(1 for looks in self.looks[n] if looks > self.boot_looks)
            for n, g in self.state.items()
            if g.weight > 0
        )

    def send(self, requests: int) -> None:
        """Spread `requests` over the groups by weight; a version's error rate decides its 500s."""
        total = sum(g.weight for g in self.state.values()) or 1
        for name, group in self.state.items():
            share = requests * group.weight // total
            stats = self.stats.setdefault(name, Stats())
            rate = self.error_rate.get(group.version, 0.0)
            for _ in range(share):
                # every (1/rate)-th request fails, so small shares still see their errors
                failed = int((stats.count + 1) * rate) > int(stats.count * rate)
                stats.observe(500 if failed else 200, self.latency.get(group.version, 0.01))

    def metrics(self, app: str, env: str) -> dict[str, Mapping[str, Any]]:
        return {name: stats.snapshot() for name, stats in self.stats.items()}

    def window(
        self, app: str, env: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
    ) -> Window:
        return Window.between(before, after)

    def smoke(self, app: str, env: str, name: str, path: str) -> str | None:
        return None

    def refusal(self, strategy: str) -> str:
        return f"--strategy: {strategy!r} is not known"

    def test(self, app: str, env: str, version: str) -> GateResult:
        return GateResult(passed=True, seconds=0.0, skipped="in-memory fleet")

    def release(self, app: str, env: str, version: str, stop: threading.Event | None = None) -> None:
        if version in self.failing_release:
            raise SproutError(f"`python -m migrate` exited 1 for {version}")
        self.releases.append(version)

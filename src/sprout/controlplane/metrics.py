"""The daemon's Prometheus metrics: loop health, fleet sizes and release outcomes, read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sprout.controlplane.status import environments_status
from sprout.loops import STALL_PERIODS, LoopHealth
from sprout.state import StateStore


class DaemonCollector:
    """Reads the loops' reports and the state store when scraped; nothing is counted in between."""

    def __init__(self, store: StateStore, loops: Callable[[], Iterable[LoopHealth]]) -> None:
        self._store = store
        self._loops = loops

    def collect(self) -> Iterator[Metric]:
        """Every family of the daemon's `/metrics`."""
        yield from self._loop_families()
        yield from self._fleet_families()
        yield from self._release_families()

    def _loop_families(self) -> Iterator[Metric]:
        stalled = GaugeMetricFamily(
            "sprout_daemon_loop_stalled",
            f"1 when the loop has not passed for {STALL_PERIODS} periods, else 0.",
            labels=["loop"],
        )
        age = GaugeMetricFamily(
            "sprout_daemon_loop_last_pass_age_seconds",
            "Seconds since the loop's last good pass (absent before its first).",
            labels=["loop"],
        )
        failures = GaugeMetricFamily(
            "sprout_daemon_loop_failures", "Failed passes in a row since the last good one.", labels=["loop"]
        )
        period = GaugeMetricFamily("sprout_daemon_loop_period_seconds", "The loop's period.", labels=["loop"])
        now = time.time()
        for health in self._loops():
            stalled.add_metric([health.name], int(health.stalled))
            if health.last_pass is not None:
                age.add_metric([health.name], max(0.0, now - health.last_pass))
            failures.add_metric([health.name], health.failures)
            period.add_metric([health.name], health.period)
        yield from (stalled, age, failures, period)

    def _fleet_families(self) -> Iterator[Metric]:
        env_labels, group_labels = ["app", "env"], ["app", "env", "group"]
        desired = GaugeMetricFamily(
            "sprout_daemon_environment_desired_instances",
            "Instances the environment asks for.",
            labels=env_labels,
        )
        healthy = GaugeMetricFamily(
            "sprout_daemon_environment_healthy_instances",
            "Instances running healthy in the desired groups.",
            labels=env_labels,
        )
        default = GaugeMetricFamily(
            "sprout_daemon_environment_default_route",
            "1 for the environment the router's default route serves, else 0.",
            labels=env_labels,
        )
        group_desired = GaugeMetricFamily(
            "sprout_daemon_group_desired_instances", "Instances the group asks for.", labels=group_labels
        )
        group_healthy = GaugeMetricFamily(
            "sprout_daemon_group_healthy_instances",
            "The group's instances running healthy.",
            labels=group_labels,
        )
        group_weight = GaugeMetricFamily(
            "sprout_daemon_group_weight", "The group's traffic weight.", labels=group_labels
        )
        for env in environments_status(self._store, None):
            labels = [env["app"], env["env"]]
            desired.add_metric(labels, env["desired"])
            healthy.add_metric(labels, env["healthy"])
            default.add_metric(labels, int(env["default"]))
            up = [
                i["group"] for i in env["instances"] if i["state"] == "running" and i["health"] == "healthy"
            ]
            for group in env["groups"]:
                group_desired.add_metric([*labels, group["name"]], group["capacity"])
                group_healthy.add_metric([*labels, group["name"]], up.count(group["name"]))
                group_weight.add_metric([*labels, group["name"]], group["weight"])
        yield from (desired, healthy, default, group_desired, group_healthy, group_weight)

    def _release_families(self) -> Iterator[Metric]:
        finished = CounterMetricFamily(
            "sprout_daemon_releases", "Finished releases, by outcome.", labels=["app", "env", "outcome"]
        )
        running = GaugeMetricFamily(
            "sprout_daemon_releases_in_progress", "Releases started and not finished.", labels=["app", "env"]
        )
        for app, env, outcome, count in self._store.release_outcomes():
            if outcome is None:
                running.add_metric([app, env], count)
            else:
                finished.add_metric([app, env, outcome], count)
        yield from (finished, running)


def daemon_registry(store: StateStore, loops: Callable[[], Iterable[LoopHealth]]) -> CollectorRegistry:
    """A registry holding only the daemon's collector (no process or platform metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(store, loops))
    return registry

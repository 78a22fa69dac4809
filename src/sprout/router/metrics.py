"""Request counters and latency histograms per target and per group, as JSON and Prometheus text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

# prometheus-client is imported where a page is made, not here: the CLI reads `Stats` through
# `sprout.report` and every command pays for its imports (60 ms for this one).
if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from sprout.router.router import Router

BUCKETS: Final[tuple[float, ...]] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
CLASSES: Final[tuple[str, ...]] = ("1xx", "2xx", "3xx", "4xx", "5xx")


def bucket_of(seconds: float) -> int:
    """The latency bucket of a duration: the index of the first bound at or above it."""
    # A scan rather than bisect: almost every request lands in the first buckets, and compiled it is a
    # few float compares where bisect makes a rich comparison per probe (~1k instructions a request).
    i = 0
    n = len(BUCKETS)
    while i < n and BUCKETS[i] < seconds:
        i += 1
    return i


class Stats:
    """Monotonic counters of one target or group: requests by status class, in flight, latency."""

    __slots__ = ("by_class", "count", "in_flight", "latency", "total")

    def __init__(self) -> None:
        self.by_class = [0, 0, 0, 0, 0]
        self.latency = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0
        self.in_flight = 0

    def observe(self, status: int, seconds: float) -> None:
        """Count one finished request."""
        cls = status // 100 - 1
        self.by_class[cls if 0 <= cls < 5 else 4] += 1
        self.latency[bucket_of(seconds)] += 1
        self.count += 1
        self.total += seconds

    def quantile(self, q: float) -> float:
        """Estimated latency quantile in seconds, interpolated inside its bucket (0.0 when empty)."""
        if self.count == 0:
            return 0.0
        rank = q * self.count
        seen = 0
        lower = 0.0
        for i, n in enumerate(self.latency):
            if n and seen + n >= rank:
                if i == len(BUCKETS):
                    return BUCKETS[-1]
                upper = BUCKETS[i]
                return lower + (upper - lower) * (rank - seen) / n
            seen += n
            lower = BUCKETS[i] if i < len(BUCKETS) else lower
        return BUCKETS[-1]

    @classmethod
    def between(cls, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Stats:
        """The requests counted between two `snapshot()` documents of one target or group.

        With no `before`, or one the counters went below (the router restarted), it is since the start.
        """
        if before is not None and before["requests"]["total"] > after["requests"]["total"]:
            before = None
        stats = cls()
        for i, name in enumerate(CLASSES):
            stats.by_class[i] = after["requests"][name] - (before["requests"][name] if before else 0)
        keys = [*map(str, BUCKETS), "+Inf"]
        done_after = done_before = 0
        for i, key in enumerate(keys):
            cum_after = after["latency"]["buckets"][key]
            cum_before = before["latency"]["buckets"][key] if before else 0
            stats.latency[i] = (cum_after - done_after) - (cum_before - done_before)
            done_after, done_before = cum_after, cum_before
        stats.count = after["latency"]["count"] - (before["latency"]["count"] if before else 0)
        stats.total = after["latency"]["sum"] - (before["latency"]["sum"] if before else 0.0)
        stats.in_flight = after["in_flight"]
        return stats

    def add(self, other: Stats) -> None:
        """Count `other`'s requests in these counters too (totals over several targets)."""
        for i, n in enumerate(other.by_class):
            self.by_class[i] += n
        for i, n in enumerate(other.latency):
            self.latency[i] += n
        self.count += other.count
        self.total += other.total
        self.in_flight += other.in_flight

    def copy(self) -> Stats:
        """These counters as they are now, in a new object."""
        copy = Stats()
        copy.by_class = self.by_class[:]
        copy.latency = self.latency[:]
        copy.count, copy.total, copy.in_flight = self.count, self.total, self.in_flight
        return copy

    def snapshot(self) -> dict[str, Any]:
        """The counters as the `/metrics.json` document of one target or group."""
        cumulative = []
        acc = 0
        for n in self.latency:
            acc += n
            cumulative.append(acc)
        buckets = {str(b): cumulative[i] for i, b in enumerate(BUCKETS)}
        buckets["+Inf"] = cumulative[-1]
        requests = {c: self.by_class[i] for i, c in enumerate(CLASSES)}
        requests["total"] = self.count
        return {
            "requests": requests,
            "in_flight": self.in_flight,
            "latency": {
                "buckets": buckets,
                "count": self.count,
                "sum": round(self.total, 6),
                "p50": round(self.quantile(0.50), 6),
                "p95": round(self.quantile(0.95), 6),
                "p99": round(self.quantile(0.99), 6),
            },
        }


class Reading:
    """A copy of a data plane's counters and target health; turning it into Prometheus text happens later,
    off the event loop."""

    def __init__(
        self,
        groups: list[tuple[list[str], Stats]],
        targets: list[tuple[list[str], Stats]],
        members: list[tuple[str, str, int, list[tuple[str, bool]]]],
        connections: int,
        started: float,
    ) -> None:
        self.routes: dict[str, Stats] = {}
        for (route, _group), stats in groups:
            self.routes.setdefault(route, Stats()).add(stats)
        self.groups = groups
        #: ([route, group, target id, version], stats) per target.
        self.targets = targets
        #: (route, group, weight, [(target id, taking traffic)]) of the table in force.
        self.members = members
        self.connections = connections
        self.started = started

    @classmethod
    def of(cls, router: Router) -> Reading:
        """The embedded router's counters, taken on its event loop in one go (~1 ms for hundreds of targets)."""
        return cls(
            groups=[([route, group], stats.copy()) for (route, group), stats in router.group_stats.items()],
            targets=[
                ([t.route, t.group, t.id, t.version], t.stats.copy())
                for t in [*router.retired.values(), *router.targets.values()]
            ],
            members=[
                (name, g.name, g.weight, [(t.id, t in g.healthy) for t in g.targets])
                for name, live in router.routes.items()
                for g in live.groups
            ],
            connections=len(router.clients),
            started=router.started,
        )


class RouterCollector:
    """A reading of the router's counters as Prometheus metric families."""

    def __init__(self, reading: Reading) -> None:
        self._reading = reading

    def collect(self) -> Iterator[Metric]:
        """Every family: per route (environment), group and target; target health; open connections."""
        from prometheus_client.core import GaugeMetricFamily

        reading = self._reading
        yield from _families("route", ["route"], [([name], stats) for name, stats in reading.routes.items()])
        yield from _families("group", ["route", "group"], reading.groups)
        # No latency histogram per target: it would be most of the page (`/metrics.json` has them).
        yield from _families(
            "target", ["route", "group", "target", "version"], reading.targets, histogram=False
        )
        healthy = GaugeMetricFamily(
            "sprout_router_target_healthy",
            "1 while the target passes its health checks and takes traffic, else 0.",
            labels=["route", "group", "target"],
        )
        weight = GaugeMetricFamily(
            "sprout_router_group_weight", "The group's traffic weight.", labels=["route", "group"]
        )
        members = GaugeMetricFamily(
            "sprout_router_group_healthy_targets",
            "Targets of the group taking traffic.",
            labels=["route", "group"],
        )
        for route, group, share, targets in reading.members:
            weight.add_metric([route, group], share)
            members.add_metric([route, group], sum(up for _, up in targets))
            for target, up in targets:
                healthy.add_metric([route, group, target], int(up))
        yield from (healthy, weight, members)
        yield GaugeMetricFamily(
            "sprout_router_connections", "Open client connections.", value=reading.connections
        )
        yield GaugeMetricFamily(
            "sprout_router_start_time_seconds",
            "When this router worker started (Unix time).",
            value=reading.started,
        )


def _families(
    kind: str, labels: list[str], rows: Iterable[tuple[list[str], Stats]], histogram: bool = True
) -> Iterator[Metric]:
    """Requests by status class, in flight and (with `histogram`) the latency of one kind of series."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.utils import floatToGoString

    base = f"sprout_router_{kind}"
    requests = CounterMetricFamily(
        f"{base}_requests", "Requests answered, by status class.", labels=[*labels, "class"]
    )
    in_flight = GaugeMetricFamily(f"{base}_in_flight", "Requests in flight.", labels=labels)
    latency = HistogramMetricFamily(
        f"{base}_request_duration_seconds", "Time from request head to response end.", labels=labels
    )
    bounds = [*map(floatToGoString, BUCKETS), "+Inf"]
    for values, stats in rows:
        for i, cls in enumerate(CLASSES):
            requests.add_metric([*values, cls], stats.by_class[i])
        in_flight.add_metric(values, stats.in_flight)
        if not histogram:
            continue
        cumulative = 0
        buckets = []
        for bound, n in zip(bounds, stats.latency, strict=True):
            cumulative += n
            buckets.append((bound, float(cumulative)))
        latency.add_metric(values, buckets, stats.total)
    yield from (requests, in_flight, latency) if histogram else (requests, in_flight)


def exposition(reading: Reading) -> bytes:
    """The Prometheus text of a reading; the slow part of a scrape, so it runs off the event loop."""
    from prometheus_client import generate_latest

    return generate_latest(RouterCollector(reading))

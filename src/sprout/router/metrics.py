"""Request counters and latency histograms per target and per group, as JSON and Prometheus text."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

BUCKETS: tuple[float, ...] = (
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
CLASSES: tuple[str, ...] = ("1xx", "2xx", "3xx", "4xx", "5xx")


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
        self.latency[bisect_left(BUCKETS, seconds)] += 1
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


def _labels(labels: dict[str, str]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())


def prometheus_text(series: list[tuple[str, dict[str, str], Stats]], extra: dict[str, float]) -> str:
    """Render (kind, labels, stats) rows in the Prometheus text exposition format 0.0.4."""
    out: list[str] = []
    for kind in ("target", "group"):
        rows = [(labels, stats) for k, labels, stats in series if k == kind]
        base = f"sprout_router_{kind}"
        out.append(f"# HELP {base}_requests_total Requests answered, by status class.")
        out.append(f"# TYPE {base}_requests_total counter")
        for labels, stats in rows:
            for i, cls in enumerate(CLASSES):
                out.append(
                    f"{base}_requests_total{{{_labels({**labels, 'class': cls})}}} {stats.by_class[i]}"
                )
        out.append(f"# HELP {base}_in_flight Requests in flight.")
        out.append(f"# TYPE {base}_in_flight gauge")
        for labels, stats in rows:
            out.append(f"{base}_in_flight{{{_labels(labels)}}} {stats.in_flight}")
        out.append(f"# HELP {base}_request_duration_seconds Time from request head to response end.")
        out.append(f"# TYPE {base}_request_duration_seconds histogram")
        for labels, stats in rows:
            acc = 0
            for i, n in enumerate(stats.latency):
                acc += n
                le = str(BUCKETS[i]) if i < len(BUCKETS) else "+Inf"
                out.append(f"{base}_request_duration_seconds_bucket{{{_labels({**labels, 'le': le})}}} {acc}")
            out.append(f"{base}_request_duration_seconds_sum{{{_labels(labels)}}} {stats.total}")
            out.append(f"{base}_request_duration_seconds_count{{{_labels(labels)}}} {stats.count}")
    for name, value in extra.items():
        out.append(f"# TYPE sprout_router_{name} gauge")
        out.append(f"sprout_router_{name} {value}")
    return "\n".join(out) + "\n"

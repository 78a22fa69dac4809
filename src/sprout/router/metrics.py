"""Request counters and latency histograms per target and per group, as JSON and Prometheus text."""

from __future__ import annotations

from bisect import bisect_left
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


#: Counters per status class in `Stats.hist`: one per latency bucket, plus the overflow bucket.
SLOTS = len(BUCKETS) + 1


def _class_offset(status: int) -> int:
    cls = status // 100 - 1
    return (cls if 0 <= cls < 5 else 4) * SLOTS


#: `hist` offset of a status's class, by status (codes are three digits: an upstream cannot send more).
CLASS_OFFSET: tuple[int, ...] = tuple(_class_offset(status) for status in range(1000))


class Stats:
    """Monotonic counters of one target or group: requests by status class, in flight, latency.

    One request is one increment: `hist` counts (status class, latency bucket) pairs, at
    `CLASS_OFFSET[status] + bisect_left(BUCKETS, seconds)`; the per-class and per-bucket counts are sums.
    """

    __slots__ = ("hist", "in_flight", "total")

    def __init__(self) -> None:
        self.hist = [0] * (5 * SLOTS)
        self.total = 0.0
        self.in_flight = 0

    def observe(self, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.hist[CLASS_OFFSET[status] + bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    @property
    def by_class(self) -> list[int]:
        """Requests per status class (1xx … 5xx)."""
        hist = self.hist
        return [sum(hist[i * SLOTS : (i + 1) * SLOTS]) for i in range(5)]

    @property
    def latency(self) -> list[int]:
        """Requests per latency bucket (the last one is beyond the largest bound)."""
        hist = self.hist
        return [sum(hist[b::SLOTS]) for b in range(SLOTS)]

    @property
    def count(self) -> int:
        """Requests counted."""
        return sum(self.hist)

    def quantile(self, q: float) -> float:
        """Estimated latency quantile in seconds, interpolated inside its bucket (0.0 when empty)."""
        count = self.count
        if count == 0:
            return 0.0
        rank = q * count
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

    def snapshot(self) -> dict[str, Any]:
        """The counters as the `/metrics.json` document of one target or group."""
        cumulative = []
        acc = 0
        for n in self.latency:
            acc += n
            cumulative.append(acc)
        buckets = {str(b): cumulative[i] for i, b in enumerate(BUCKETS)}
        buckets["+Inf"] = cumulative[-1]
        requests = dict(zip(CLASSES, self.by_class, strict=True))
        count = cumulative[-1]
        requests["total"] = count
        return {
            "requests": requests,
            "in_flight": self.in_flight,
            "latency": {
                "buckets": buckets,
                "count": count,
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
            for cls, n in zip(CLASSES, stats.by_class, strict=True):
                out.append(f"{base}_requests_total{{{_labels({**labels, 'class': cls})}}} {n}")
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

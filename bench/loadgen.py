"""A bounded, paced HTTP load generator for Sprout's benchmarks (loopback only).

Worker threads keep one HTTP/1.1 connection each and send requests on a fixed schedule (`rate`
requests per second in total), alternating GETs and POSTs as asked. Every answer is recorded with
its send time, latency, status and the `X-Sprout-Version` header, so a benchmark can count failed
requests and tell when every answer came from a new version. It stops by itself at `duration` or
`max_requests`, whichever comes first.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """One request's outcome."""

    sent: float
    latency: float
    method: str
    status: int
    version: str
    error: str = ""

    @property
    def failed(self) -> bool:
        """A transport error or a 5xx answer."""
        return bool(self.error) or self.status >= 500


@dataclass
class Load:
    """Paced GET/POST load against one host:port with a Host header, until stopped or bounded out."""

    host: str
    port: int
    host_header: str
    rate: float = 200.0
    workers: int = 16
    get_path: str = "/"
    post_path: str | None = None
    post_body: Callable[[int], bytes] = lambda n: b"item=1&qty=1"
    post_every: int = 4
    headers: dict[str, str] = field(default_factory=dict)
    duration: float = 600.0
    max_requests: int = 1_000_000
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0

    def start(self) -> Load:
        """Begin sending; returns self."""
        self._t0 = time.monotonic()
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, args=(i,), daemon=True, name=f"load-{i}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Sample]:
        """Stop sending, wait for the workers, return every sample sorted by send time."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        with self._lock:
            return sorted(self.samples, key=lambda s: s.sent)

    def snapshot(self) -> list[Sample]:
        """The samples so far (a copy)."""
        with self._lock:
            return list(self.samples)

    def _work(self, index: int) -> None:
        conn: http.client.HTTPConnection | None = None
        k = 0
        while not self._stop.is_set():
            n = k * self.workers + index
            if n >= self.max_requests:
                return
            due = self._t0 + n / self.rate
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if time.monotonic() - self._t0 > self.duration:
                return
            k += 1
            use_post = self.post_path is not None and n % self.post_every == self.post_every - 1
            method = "POST" if use_post else "GET"
            path = self.post_path if use_post and self.post_path else self.get_path
            body = self.post_body(n) if use_post else None
            headers = {**self.headers, "Host": self.host_header}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            sent = time.time()
            start = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                sample = Sample(
                    sent,
                    time.monotonic() - start,
                    method,
                    response.status,
                    response.getheader("X-Sprout-Version") or "",
                )
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                sample = Sample(sent, time.monotonic() - start, method, 0, "", f"{type(exc).__name__}: {exc}")
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.samples.append(sample)
        if conn is not None:
            conn.close()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by nearest rank (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def all_new_since(samples: list[Sample], version: str) -> float | None:
    """The send time after which every answer came from `version` (None if the last one did not)."""
    last_other = None
    for sample in samples:
        if sample.version != version and not sample.failed:
            last_other = sample.sent
    served = [s for s in samples if s.version == version]
    if not served or (samples and samples[-1].version != version):
        return None
    return last_other if last_other is not None else served[0].sent

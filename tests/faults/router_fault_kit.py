"""Router fault helpers: a paced, bounded load that tells refusals from failures; the router's worker; backlog."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

ROUTER_BACKEND = Path(__file__).resolve().parents[1] / "router" / "router_backend.py"


@dataclass(frozen=True)
class Outcome:
    """One request: when it was sent and answered, and how it ended ('ok', 'refused' or the failure)."""

    sent: float
    done: float
    result: str


class PacedLoad:
    """`rate` requests a second for `seconds` over new loopback connections, from a pool of threads.

    Each request has its slot in a fixed schedule, so a stall does not lower the load offered: the
    requests of a stalled second go out as soon as threads free up. A connection refused is counted
    apart from any other failure. Bounded: it ends by itself after `rate * seconds` requests.
    """

    def __init__(self, port: int, host: str, rate: float = 150.0, seconds: float = 12.0) -> None:
        self.port = port
        self.request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        self.rate = rate
        self.total = int(rate * seconds)
        self.outcomes: list[Outcome] = []
        self.started = 0.0
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(64)]

    def __enter__(self) -> PacedLoad:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def join(self) -> None:
        """Wait for every scheduled request to end (each has a 10 s timeout)."""
        for thread in self._threads:
            thread.join(60)

    def at(self, offset: float) -> None:
        """Sleep until `offset` seconds after the load started."""
        time.sleep(max(0.0, self.started + offset - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self._lock:
                index = self._next
                self._next += 1
            if index >= self.total:
                return
            self.at(index / self.rate)
            outcome = self._one()
            with self._lock:
                self.outcomes.append(outcome)

    def _one(self) -> Outcome:
        sent = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
                conn.sendall(self.request)
                reply = b""
                while chunk := conn.recv(65536):
                    reply += chunk
        except ConnectionRefusedError:
            return Outcome(sent, time.monotonic(), "refused")
        except OSError as exc:
            return Outcome(sent, time.monotonic(), f"{type(exc).__name__}: {exc}")
        status = reply.split(b"\r\n", 1)[0].decode("latin-1")
        return Outcome(
            sent, time.monotonic(), "ok" if status.startswith("HTTP/1.1 200 ") else status or "empty"
        )

    def snapshot(self) -> list[Outcome]:
        """The outcomes so far."""
        with self._lock:
            return list(self.outcomes)

    def ok(self) -> int:
        return sum(1 for o in self.snapshot() if o.result == "ok")

    def refused(self) -> list[Outcome]:
        return [o for o in self.snapshot() if o.result == "refused"]

    def failed(self) -> list[Outcome]:
        """Requests that ended other than with a 200, refusals apart."""
        return [o for o in self.snapshot() if o.result not in ("ok", "refused")]

    def latency(self, quantile: float) -> float:
        """A quantile of the answered requests' latency, in seconds."""
        times = sorted(o.done - o.sent for o in self.snapshot() if o.result == "ok")
        return times[min(len(times) - 1, int(quantile * len(times)))] if times else 0.0

    def answered_after(self, instant: float) -> float | None:
        """When the first request sent after `instant` got its 200, if one has."""
        done = [o.done for o in self.snapshot() if o.result == "ok" and o.sent > instant]
        return min(done) if done else None


def wait_for(predicate: Callable[[], object], deadline: float, what: str) -> None:
    """Poll until `predicate()` is truthy or the monotonic `deadline` passes (then fail naming `what`)."""
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def worker_of(supervisor: int, other_than: int | None = None, timeout: float = 15.0) -> psutil.Process:
    """The supervisor's router worker (a new one when `other_than` is given), waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        for child in psutil.Process(supervisor).children():
            try:
                if child.pid != other_than and "sprout.router.worker" in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                continue
        if time.monotonic() >= deadline:
            raise AssertionError(f"router supervisor {supervisor}: no new worker within {timeout}s")
        time.sleep(0.02)


def listen_backlog(port: int) -> int:
    """The accept backlog in force on a loopback listening port (`ss`'s Send-Q of a LISTEN socket)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2])


@dataclass
class Backend:
    """A test backend process (tests/router/router_backend.py) and its port."""

    proc: subprocess.Popen[str]
    port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def spawn_backend(folder: Path, ident: str) -> Backend:
    """Start a backend answering "v1 <ident>" on a free port; the caller stops it."""
    cmd = [sys.executable, str(ROUTER_BACKEND), "--version", "v1", "--id", ident]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=folder)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT"):
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"backend {ident} did not start: {line!r}")
    return Backend(proc, int(line.split()[1]))

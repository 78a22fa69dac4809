"""Live autoscaling of the microsite under a step load through the router: how fast, and without errors?

It copies examples/microsite to a temporary folder with the bench's manifest (`[instances] min = 1,
max = 6`, target tracking on requests per instance, SQLite database and sessions), brings it up with the
real `sprout up` under its own SPROUT_HOME, then sends a paced keep-alive load through the router:

    --base req/s for --base-seconds  →  --peak req/s for --peak-seconds  →  --base req/s until back to min

and prints
  - the time from the step up to the first scale-out decision (the daemon's "scale" events);
  - the time from the step up until the desired fleet serves (polled status), and until p99 latency
    (1-s windows of the load's own samples) is under the SLO for 5 s in a row, and for good; the peak's p99;
  - failed requests during the peak (transport errors and 5xx; target 0);
  - after the step down: the time until desired capacity is back at min and until only min instances
    are live, with the failed requests during scale-in (target 0);
  - a timeline per 5 s: offered and answered req/s, p99, failures, desired, serving and live instances.

Bounded (`--max-seconds` of load), loopback only, and it always tears down: `sprout down`, then a kill by
pid of any process still running under its home, then the temporary folder is removed (`--keep` keeps it).

    .venv/bin/python bench/autoscale.py [--peak 300] [--target 60] [--slo 0.1] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sprout.cli.client import ApiClient, connect  # noqa: E402
from sprout.paths import Home  # noqa: E402

MICROSITE = REPO / "examples" / "microsite"
HOST = "microsite.localhost"
APP, ENV = "microsite", "production"

MANIFEST = """\
# Written by bench/autoscale.py: the microsite with live target tracking between 1 and 6 instances.
[app]
name = "microsite"
web = "uvicorn microsite.app:app --host $HOST --port $PORT --no-access-log"
install = "pip install -r requirements.txt"
release = "python -m microsite.migrate"

[health]
path = "/healthz"
interval = "1s"
healthy_threshold = 1

[instances]
min = 1
max = 6
zones = ["a", "b"]

[scaling]
metric = "requests_per_instance"
target = {target}
scale_in_stabilization = "{stabilization}"
warmup = "{warmup}"
slo_p99 = "{slo}s"

[deploy]
drain = "10s"

[router]
hosts = ["{host}"]
"""


@dataclass(frozen=True)
class Shot:
    """One request: when it was due (seconds since the load started), its latency and outcome."""

    due: float
    latency: float
    failed: bool


@dataclass(frozen=True)
class Fleet:
    """The fleet as polled once a second: desired capacity, serving (running and healthy) and live."""

    at: float
    desired: int
    serving: int
    live: int


class StepLoad:
    """Paced keep-alive GETs through the router at a piecewise-constant rate (after bench/loadgen.py).

    Request n is due at the time the step schedule reaches n; a worker that is late sends at once, and
    latency counts from the due time, so queueing in the load generator is not hidden (no coordinated
    omission).
    """

    def __init__(self, port: int, steps: list[tuple[float, float]], tail_rate: float, workers: int) -> None:
        self.port = port
        self.workers = workers
        self.shots: list[Shot] = []
        self.errors: dict[str, int] = {}
        self._boundaries: list[tuple[float, float, float]] = []  # (start time, start count, rate)
        at = count = 0.0
        for rate, seconds in steps:
            self._boundaries.append((at, count, rate))
            at, count = at + seconds, count + rate * seconds
        self._boundaries.append((at, count, tail_rate))
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = 0.0

    def due(self, n: int) -> float:
        """When request n is due, seconds after the start."""
        at, count, rate = self._boundaries[0]
        for boundary in self._boundaries:
            if boundary[1] > n:
                break
            at, count, rate = boundary
        return at + (n - count) / rate

    def start(self) -> None:
        self.t0 = time.monotonic()
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)

    def _work(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            with self._lock:
                n = self._next
                self._next += 1
            due = self.due(n)
            delay = self.t0 + due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            failed, error = False, ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/", headers={"Host": HOST})
                response = conn.getresponse()
                response.read()
                if response.status >= 500:
                    failed, error = True, f"HTTP {response.status}"
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                failed, error = True, type(exc).__name__
                if conn is not None:
                    conn.close()
                conn = None
            latency = time.monotonic() - (self.t0 + due)
            with self._lock:
                self.shots.append(Shot(due, latency, failed))
                if error:
                    self.errors[error] = self.errors.get(error, 0) + 1
        if conn is not None:
            conn.close()


def p99(latencies: list[float]) -> float:
    """Nearest-rank 99th percentile (0 when empty)."""
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(0.99 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sprout(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def processes_under(home: Path) -> list[psutil.Process]:
    """Every live process with the home in its command line or working folder (never this one)."""
    mark = str(home)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if mark in " ".join(proc.info["cmdline"] or []) or (proc.info["cwd"] or "").startswith(mark):
            found.append(proc)
    return found


def poll_fleet(client: ApiClient, started: float, fleet: list[Fleet], stop: threading.Event) -> None:
    """Once a second: the environment's desired capacity and instances, from the daemon's status."""
    while not stop.wait(1.0):
        try:
            status = client.get("/v1/status")
        except Exception:
            continue
        for env in status.get("environments", []):
            if env["app"] == APP and env["env"] == ENV:
                instances = env["instances"]
                serving = sum(1 for i in instances if i["state"] == "running" and i["health"] == "healthy")
                live = sum(1 for i in instances if i["state"] in ("launching", "running"))
                fleet.append(Fleet(time.monotonic() - started, env["desired"], serving, live))


def scale_events(client: ApiClient, since: float) -> list[dict[str, Any]]:
    """The daemon's scale decisions since `since` (filtered here too: the kind filter is a hint)."""
    doc = client.get("/v1/events", app=APP, env=ENV, kind="scale", since=since, limit=10_000)
    return [e for e in doc.get("events", []) if e["kind"] == "scale"]


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    home, app = work / "home", work / "app"
    shutil.copytree(
        MICROSITE, app, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3", ".pytest_cache", "tests")
    )
    (app / "sprout.toml").write_text(
        MANIFEST.format(
            target=args.target,
            stabilization=args.stabilization,
            warmup=args.warmup,
            slo=args.slo,
            host=HOST,
        )
    )
    port = free_port()
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    up = sprout(home, "up", str(app), "--port", str(port))
    if up.returncode != 0:
        raise RuntimeError(f"sprout up failed:\n{up.stdout}\n{up.stderr}")
    print(f"up in {time.monotonic() - began:.1f}s; router on 127.0.0.1:{port}", flush=True)
    client = connect(Home(home))

    steps = [(args.base, args.base_seconds), (args.peak, args.peak_seconds)]
    load = StepLoad(port, steps, args.base, args.workers)
    fleet: list[Fleet] = []
    stop_polling = threading.Event()
    wall0 = time.time()
    load.start()
    poller = threading.Thread(target=poll_fleet, args=(client, load.t0, fleet, stop_polling), daemon=True)
    poller.start()
    drop = args.base_seconds + args.peak_seconds
    try:
        # After the drop, run until min instances are live (and a few seconds more), or --max-seconds.
        while True:
            elapsed = time.monotonic() - load.t0
            if elapsed >= args.max_seconds:
                break
            settled = [f for f in fleet if f.at > drop + 1 and f.desired == 1 and f.live == 1]
            if settled and elapsed > settled[0].at + 5:
                break
            time.sleep(0.5)
    finally:
        load.stop()
        stop_polling.set()
        poller.join(5)
    events = scale_events(client, wall0 - 1)
    client.close()
    figures = summarise(args, load, fleet, events, wall0, drop)
    figures["settings"]["loadavg_before_after"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    return figures


def summarise(
    args: argparse.Namespace,
    load: StepLoad,
    fleet: list[Fleet],
    events: list[dict[str, Any]],
    wall0: float,
    drop: float,
) -> dict[str, Any]:
    peak_at = float(args.base_seconds)
    shots = sorted(load.shots, key=lambda s: s.due)
    windows: dict[int, list[Shot]] = {}
    for shot in shots:
        windows.setdefault(int(shot.due), []).append(shot)

    decisions = [
        {
            "t": round(float(e["time"]) - wall0, 2),
            "desired": e.get("data", {}).get("desired"),
            "msg": e["message"],
        }
        for e in events
    ]
    outs = [d for d in decisions if d["t"] >= peak_at and "→" in d["msg"] and _grows(d["msg"])]
    first_out = outs[0]["t"] - peak_at if outs else None
    # p99 back under the SLO: the end of the last 1-s window of the peak whose p99 exceeds it.
    over = [s for s, w in windows.items() if peak_at <= s < drop and p99([x.latency for x in w]) > args.slo]
    p99_ok = (max(over) + 1 - peak_at) if over else 0.0
    # ... and the first recovery: the start of the first 5 windows in a row under it after the step up.
    bad = set(over)
    start = int(peak_at)
    while start < drop and any(second in bad for second in range(start, start + 5)):
        start += 1
    p99_recovered = float(start - peak_at) if start < drop else None
    failed_peak = sum(1 for s in shots if peak_at <= s.due < drop and s.failed)
    sent_peak = sum(1 for s in shots if peak_at <= s.due < drop)
    failed_in = sum(1 for s in shots if s.due >= drop and s.failed)
    sent_in = sum(1 for s in shots if s.due >= drop)
    failed_base = sum(1 for s in shots if s.due < peak_at and s.failed)
    desired_min = next((f.at - drop for f in fleet if f.at > drop and f.desired == 1), None)
    live_min = next((f.at - drop for f in fleet if f.at > drop and f.desired == 1 and f.live == 1), None)
    # Launch time as the fleet saw it: the first poll after the step up where the desired fleet serves.
    grown = next(
        (
            f.at - peak_at
            for f in fleet
            if peak_at <= f.at < drop and f.desired > 1 and f.serving >= f.desired
        ),
        None,
    )
    max_desired = max((f.desired for f in fleet), default=0)
    max_serving = max((f.serving for f in fleet), default=0)

    timeline = []
    end = int(max((s.due for s in shots), default=0)) + 1
    for start in range(0, end, 5):
        chunk = [s for s in shots if start <= s.due < start + 5]
        polled = [f for f in fleet if start <= f.at < start + 5]
        last = polled[-1] if polled else None
        timeline.append(
            {
                "t": start,
                "offered": round(len(chunk) / 5, 1),
                "p99_ms": round(p99([s.latency for s in chunk]) * 1000, 1),
                "failed": sum(1 for s in chunk if s.failed),
                "desired": last.desired if last else None,
                "serving": last.serving if last else None,
                "live": last.live if last else None,
            }
        )
    return {
        "settings": {
            "base": args.base,
            "peak": args.peak,
            "base_seconds": args.base_seconds,
            "peak_seconds": args.peak_seconds,
            "target": args.target,
            "slo_p99_s": args.slo,
            "stabilization": args.stabilization,
            "warmup": args.warmup,
            "cpus": os.cpu_count(),
        },
        "first_scale_out_s": first_out,
        "p99_under_slo_after_s": p99_ok,
        "p99_recovered_s": p99_recovered,
        "scaled_out_serving_s": grown,
        "requests_peak": sent_peak,
        "p99_peak_ms": round(p99([s.latency for s in shots if peak_at <= s.due < drop]) * 1000, 1),
        "failed_peak": failed_peak,
        "failed_before_peak": failed_base,
        "desired_back_to_min_s": desired_min,
        "live_back_to_min_s": live_min,
        "requests_scale_in": sent_in,
        "failed_scale_in": failed_in,
        "errors": load.errors,
        "max_desired": max_desired,
        "max_serving": max_serving,
        "decisions": decisions,
        "timeline": timeline,
        "fleet": [asdict(f) for f in fleet],
    }


def _grows(message: str) -> bool:
    """True for a "desired capacity a → b" event with b > a."""
    head = message.split(" (", 1)[0].rsplit(" ", 3)
    try:
        return int(head[-1]) > int(head[-3])
    except (ValueError, IndexError):
        return False


def report(figures: dict[str, Any]) -> None:
    s = figures["settings"]
    print(
        f"\nstep load {s['base']:g} → {s['peak']:g} → {s['base']:g} req/s (GET /, keep-alive, loopback); "
        f"target {s['target']:g} req/s per instance, SLO p99 {s['slo_p99_s'] * 1000:g} ms, "
        f"stabilization {s['stabilization']}, {s['cpus']} CPUs, "
        f"load average {s['loadavg_before_after'][0]} before, {s['loadavg_before_after'][1]} after"
    )

    def show(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    print(f"first scale-out decision after the step up:   {show(figures['first_scale_out_s'])}")
    print(f"desired fleet serving after the step up:      {show(figures['scaled_out_serving_s'])}")
    print(f"p99 under the SLO for 5 s in a row after:     {show(figures['p99_recovered_s'])}")
    print(f"p99 under the SLO for good after the step up: {show(figures['p99_under_slo_after_s'])}")
    print(f"p99 over the whole peak:                      {figures['p99_peak_ms']} ms")
    print(
        f"failed requests during the peak:              {figures['failed_peak']} of {figures['requests_peak']}"
    )
    print(f"desired back at min after the step down:      {show(figures['desired_back_to_min_s'])}")
    print(f"only min instances live after the step down:  {show(figures['live_back_to_min_s'])}")
    print(
        f"failed requests during scale-in:              {figures['failed_scale_in']} of {figures['requests_scale_in']}"
    )
    print(
        f"failed before the peak: {figures['failed_before_peak']}; errors by kind: {figures['errors'] or 'none'}"
    )
    print(f"largest fleet: desired {figures['max_desired']}, serving {figures['max_serving']}")
    print("\n   t  offered/s  p99 ms  failed  desired  serving  live")
    for row in figures["timeline"]:
        print(
            f"{row['t']:>4}  {row['offered']:>9}  {row['p99_ms']:>6}  {row['failed']:>6}  "
            f"{_cell(row['desired']):>7}  {_cell(row['serving']):>7}  {_cell(row['live']):>4}"
        )
    print("\nscale decisions (s since the load started):")
    for d in figures["decisions"]:
        print(f"  {d['t']:>7.1f}  {d['msg']}")


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", type=float, default=20.0, help="req/s before and after the peak")
    parser.add_argument("--peak", type=float, default=300.0, help="req/s during the peak")
    parser.add_argument("--base-seconds", type=int, default=20)
    parser.add_argument("--peak-seconds", type=int, default=60)
    parser.add_argument("--max-seconds", type=float, default=200.0, help="hard bound on the whole load")
    parser.add_argument("--target", type=float, default=60.0, help="requests per second per instance")
    parser.add_argument("--slo", type=float, default=0.1, help="p99 latency objective in seconds")
    parser.add_argument("--stabilization", default="30s")
    parser.add_argument("--warmup", default="10s", help="launch → serving, as measured here")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, state)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sprout-bench-autoscale-", dir="/tmp"))
    try:
        figures = run(args, work)
    finally:
        home = work / "home"
        if (home / "state.db").exists():
            down = sprout(home, "down", str(work / "app"), timeout=120)
            if down.returncode != 0:
                print(f"sprout down: {down.stdout}{down.stderr}", file=sys.stderr)
        for proc in processes_under(home):
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                continue
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Zero-downtime releases under load: every strategy, 5 consecutive releases each, through the real CLI.

The microsite (`examples/microsite`, 2 instances, MariaDB, managed memcached sessions) is copied into a
scratch folder, given a bench manifest (autoscaling off, 2 s drain, 500 ms health checks, 3 s canary
steps, a bench-only database) and brought up with `sprout up` under its own SPROUT_HOME in /tmp. A paced
load of GETs of the catalogue and POSTs to the cart (--rate req/s, keep-alive, through the router with the
app's Host header) runs for the whole bench and records status and `X-Sprout-Version` per request. Then,
for each strategy, 5 times: change a file (so the bundle differs), `sprout deploy --strategy S`, and
measure from the samples

  - duration: command start → the moment after which every answer comes from the new version;
  - stale: answers from another version sent after the release reported success (must be 0);
  - failed: transport errors and 5xx answers (target 0);

next to the warm instance launch (instance.launch → instance.healthy of the release's own instances,
whose bundle the release phase has already installed) from the control plane's events. Each release is
also broken down from the events: push (+ test gate), release phase (bundle install + migrations),
launch → all new healthy, → traffic switched, → release done; "rollout" is release phase done → 100 %
on the new version. Target: blue/green duration ≤ warm launch + 2 s.

    .venv/bin/python bench/release.py [--rate 200] [--releases 5] [--strategies bluegreen,canary]
                                      [--canary-latency-ratio 3]
                                      [--with-tests] [--json] [--keep]

By default the test gate is skipped (`--skip-tests`, recorded in the history): it would add the app's
own pytest run to every duration. `--with-tests` runs it.

Prerequisites (nothing is installed): MariaDB on 127.0.0.1:3306 (root, no password) and `memcached` on
PATH. Everything runs on loopback; the bench is bounded (--max-seconds, and a request cap) and always
tears down — `sprout down`, then any leftover process of its SPROUT_HOME by pid, then the database —
also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from loadgen import Load, Sample  # noqa: E402

from sprout.services import database  # noqa: E402

MICROSITE = REPO / "examples" / "microsite"
HOST = "microsite.localhost"
APP = "microsite"
STRATEGIES = ("rolling", "rolling_with_batch", "immutable", "bluegreen", "canary")
CLI_TIMEOUT = 300.0
OUT = REPO / "bench" / "out"

BENCH_MANIFEST = """
[scaling]
enabled = false

[deploy]
drain = "2s"
rollback_window = "10s"
health_timeout = "60s"

[deploy.canary]
steps = [25, 50, 100]
interval = "3s"
min_requests = 10
max_latency_ratio = {latency_ratio}
"""


@dataclass
class Release:
    """One release's figures (seconds, counts); None where the samples could not tell."""

    strategy: str
    version: str
    command: float
    duration: float | None
    failed: int
    stale: int
    requests: int
    launches: list[float] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    outcome: str = "succeeded"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bench:
    """One scratch installation: app copy, SPROUT_HOME, database; the CLI run against it."""

    def __init__(self, work: Path, with_tests: bool, latency_ratio: float) -> None:
        self.work = work
        self.home = work / "home"
        self.app = work / "app"
        self.port = free_port()
        self.db_url = f"mysql://root@127.0.0.1:3306/bench_release_{uuid.uuid4().hex[:10]}"
        self.with_tests = with_tests
        self.latency_ratio = latency_ratio
        self.generation = 1

    def env(self) -> dict[str, str]:
        return {**os.environ, "SPROUT_HOME": str(self.home), "COLUMNS": "200", "NO_COLOR": "1"}

    def sprout(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "sprout", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            cwd=self.work,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"sprout {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def prepare(self) -> None:
        """Copy the microsite and write the bench manifest: its own database, fast health checks."""
        shutil.copytree(MICROSITE, self.app, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        manifest = self.app / "sprout.toml"
        text = manifest.read_text()
        text = re.sub(r'url = "mysql://[^"]*"', f'url = "{self.db_url}"', text)
        text = text.replace('path = "/healthz"', 'path = "/healthz"\ninterval = "500ms"\ntimeout = "500ms"')
        manifest.write_text(text + BENCH_MANIFEST.format(latency_ratio=self.latency_ratio))

    def bump(self) -> None:
        """Change a file of the app so the next push is a new version."""
        self.generation += 1
        with open(self.app / "microsite" / "__init__.py", "a", encoding="utf-8") as out:
            out.write(f"# release bench generation {self.generation}\n")

    def deploy(self, strategy: str) -> tuple[str, int, str]:
        """`sprout deploy`: the version label, the release id and the reason it did not succeed ("" if it did)."""
        args = ["deploy", str(self.app), "--strategy", strategy]
        if not self.with_tests:
            args.append("--skip-tests")
        result = self.sprout(*args, check=False)
        started = re.search(r"release (\d+) of (v\d+)", result.stdout)
        if not started:
            raise RuntimeError(f"sprout deploy: no release started:\n{result.stdout}\n{result.stderr}")
        # A release that started but did not succeed (a canary rolled back) is a result, not a crash.
        reason = " ".join((result.stderr or result.stdout).split()[-40:]) if result.returncode else ""
        return started.group(2), int(started.group(1)), reason

    def events(self) -> list[dict[str, Any]]:
        from sprout.cli.client import connect
        from sprout.paths import Home

        client = connect(Home(self.home))
        found: list[dict[str, Any]] = client.get("/v1/events", app=APP, limit=1000)["events"]
        return found

    def teardown(self) -> list[str]:
        """`sprout down`, then kill what is left of this home by pid, then drop the database."""
        notes = []
        if self.home.exists():
            try:
                self.sprout("down", str(self.app), check=False)
            except subprocess.TimeoutExpired:
                notes.append("sprout down timed out")
            left = leftovers(self.work)
            for proc in left:
                try:
                    proc.kill()
                except psutil.Error:
                    continue
            if left:
                notes.append(f"killed {len(left)} leftover process(es): {[p.pid for p in left]}")
        try:
            database.drop_database(self.db_url)
        except Exception as exc:  # teardown reports and goes on
            notes.append(f"could not drop the bench database: {exc}")
        return notes


def leftovers(work: Path) -> list[psutil.Process]:
    """Processes of this bench's installation: its folder in their command line, cwd or SPROUT_HOME."""
    mark = str(work)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
            home = proc.environ().get("SPROUT_HOME", "")
        except psutil.Error:
            continue
        if mark in cmdline or cwd.startswith(mark) or home.startswith(mark):
            found.append(proc)
    return found


def switched_at(samples: list[Sample], version: str) -> float | None:
    """The send time of the first answer from `version` after which no answer came from another version."""
    answered = [s for s in samples if not s.failed]
    last_other = max((i for i, s in enumerate(answered) if s.version != version), default=-1)
    rest = answered[last_other + 1 :]
    return rest[0].sent if rest else None


def phases(events: list[dict[str, Any]], release: int, t0: float, version: str) -> dict[str, float]:
    """Seconds from the command's start to each landmark of the release (from the control plane's events)."""
    marks: dict[str, float] = {}
    tag = f"release {release}:"
    mine = {
        e["data"].get("instance")
        for e in events
        if e["kind"] == "instance.launch" and e["data"].get("version") == version
    }
    healthy = [
        e["time"] for e in events if e["kind"] == "instance.healthy" and e["data"].get("instance") in mine
    ]
    for e in events:
        message = e["message"]
        if e["kind"] == "release.start" and message.startswith(tag):
            marks["started"] = e["time"] - t0
        elif e["kind"] == "release.step" and message.startswith(tag):
            if "release → launch" in message:
                marks["release_phase_done"] = e["time"] - t0
            elif "release succeeded" in message or "release aborted" in message:
                marks["done"] = e["time"] - t0
            elif "100% of traffic" in message or re.search(r"all \d+ instance\(s\) on", message):
                marks["switched"] = e["time"] - t0
    launched = [
        e["time"] for e in events if e["kind"] == "instance.launch" and e["data"].get("instance") in mine
    ]
    if launched:
        marks["first_launch"] = min(launched) - t0
    if healthy:
        marks["all_healthy"] = max(healthy) - t0
    return {k: round(v, 2) for k, v in marks.items()}


def launch_times(events: list[dict[str, Any]], version: str) -> list[float]:
    """instance.launch → instance.healthy of each instance of `version`."""
    launched = {
        e["data"]["instance"]: e["time"]
        for e in events
        if e["kind"] == "instance.launch" and e["data"].get("version") == version
    }
    healthy = {
        e["data"]["instance"]: e["time"]
        for e in events
        if e["kind"] == "instance.healthy" and e["data"].get("instance") in launched
    }
    return [round(healthy[i] - launched[i], 3) for i in launched if i in healthy]


def run_strategy(bench: Bench, load: Load, strategy: str, releases: int, log: Any) -> list[Release]:
    """`releases` consecutive releases with one strategy, each measured from the load's samples."""
    done = []
    for _ in range(releases):
        bench.bump()
        t0 = time.time()
        version, release_id, reason = bench.deploy(strategy)
        returned = time.time()
        time.sleep(1.5)  # answers sent after the command returned, to check nothing old is served
        end = time.time()
        window = [s for s in load.snapshot() if t0 <= s.sent < end]
        window.sort(key=lambda s: s.sent)
        switch = switched_at(window, version) if not reason else None
        stale = [s for s in window if s.sent >= returned and not s.failed and s.version != version]
        if reason:
            stale = []
        events = bench.events()
        release = Release(
            strategy=strategy,
            version=version,
            command=round(returned - t0, 2),
            duration=round(switch - t0, 2) if switch is not None else None,
            failed=sum(1 for s in window if s.failed),
            stale=len(stale),
            requests=len(window),
            launches=launch_times(events, version),
            phases=phases(events, release_id, t0, version),
            outcome=reason or "succeeded",
        )
        done.append(release)
        log(
            f"  {strategy:<18} {version:<5} duration {release.duration}s (command {release.command}s), "
            f"{release.requests} requests, {release.failed} failed, {release.stale} stale; "
            f"launch→healthy {release.launches}; {release.phases}"
            + (f"; NOT released: {reason}" if reason else "")
        )
    return done


def summarise(releases: list[Release]) -> dict[str, Any]:
    """Per strategy: durations, their median, the median warm launch, failed and stale answers."""
    table: dict[str, Any] = {}
    for strategy in dict.fromkeys(r.strategy for r in releases):
        mine = [r for r in releases if r.strategy == strategy]
        durations = [r.duration for r in mine if r.duration is not None]
        launches = [t for r in mine for t in r.launches]
        table[strategy] = {
            "durations": [r.duration for r in mine],
            "median_duration": round(statistics.median(durations), 2) if durations else None,
            "warm_launch": round(statistics.median(launches), 2) if launches else None,
            "failed": sum(r.failed for r in mine),
            "stale": sum(r.stale for r in mine),
            "requests": sum(r.requests for r in mine),
            "not_released": [f"{r.version}: {r.outcome}" for r in mine if r.outcome != "succeeded"],
            "median_release_phase": _median_phase(mine, "started", "release_phase_done"),
            "median_rollout": _median_phase(mine, "release_phase_done", "switched"),
        }
    return table


def _median_phase(releases: list[Release], start: str, end: str) -> float | None:
    spans = [r.phases[end] - r.phases[start] for r in releases if start in r.phases and end in r.phases]
    return round(statistics.median(spans), 2) if spans else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (GET + POST)")
    parser.add_argument("--releases", type=int, default=5, help="consecutive releases per strategy")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated")
    parser.add_argument("--with-tests", action="store_true", help="run the test gate on every deploy")
    parser.add_argument(
        "--canary-latency-ratio",
        type=float,
        default=1.5,
        help="[deploy.canary] max_latency_ratio (1.5 is the default; a fresh canary's p95 over a 3 s step "
        "is often 1.6-2x a warm stable's)",
    )
    parser.add_argument("--max-seconds", type=float, default=1500.0, help="bound on the load's duration")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs) afterwards")
    args = parser.parse_args()
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if shutil.which("memcached") is None:
        print("bench/release.py needs memcached on PATH (apt-get install memcached)", file=sys.stderr)
        return 2

    def log(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    # SIGTERM unwinds through `finally` like Ctrl-C does, so teardown always runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path("/tmp") / f"sprout-bench-release-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    bench = Bench(work, args.with_tests, args.canary_latency_ratio)
    load: Load | None = None
    releases: list[Release] = []
    results: dict[str, Any] = {
        "app": "examples/microsite (2 instances, MariaDB, memcached sessions)",
        "cpus": os.cpu_count(),
        "rate": args.rate,
        "test_gate": "run" if args.with_tests else "skipped (--skip-tests)",
        "canary_max_latency_ratio": args.canary_latency_ratio,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        bench.prepare()
        started = time.monotonic()
        bench.sprout("up", str(bench.app), "--port", str(bench.port))
        log(f"up: microsite with 2 instances in {time.monotonic() - started:.1f}s on port {bench.port}")
        load = Load(
            "127.0.0.1",
            bench.port,
            HOST,
            rate=args.rate,
            workers=24,
            get_path="/",
            post_path="/cart/add",
            post_body=lambda n: f"product_id={n % 5 + 1}&quantity=1".encode(),
            post_every=4,
            headers={"Accept": "application/json"},
            duration=args.max_seconds,
            max_requests=int(args.rate * args.max_seconds),
        ).start()
        time.sleep(3)
        warmup = load.snapshot()
        log(f"load: {len(warmup) / 3:.0f} req/s offered, {sum(s.failed for s in warmup)} failed in warm-up")
        for strategy in strategies:
            releases += run_strategy(bench, load, strategy, args.releases, log)
    finally:
        samples = load.stop() if load is not None else []
        results["teardown"] = bench.teardown()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    # The machine is shared: other processes' load moves the figures (the bundle install most).
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    span = (samples[-1].sent - samples[0].sent) if len(samples) > 1 else 0.0
    results["load"] = {
        "requests": len(samples),
        "achieved_rate": round(len(samples) / span, 1) if span else 0.0,
        "failed": sum(1 for s in samples if s.failed),
        "posts": sum(1 for s in samples if s.method == "POST"),
        "errors": sorted({s.error or str(s.status) for s in samples if s.failed})[:10],
    }
    results["strategies"] = summarise(releases)
    results["releases"] = [asdict(r) for r in releases]
    bluegreen = results["strategies"].get("bluegreen")
    if bluegreen and bluegreen["median_duration"] is not None and bluegreen["warm_launch"] is not None:
        budget = bluegreen["warm_launch"] + 2.0
        rollout = bluegreen["median_rollout"]
        results["bluegreen_target"] = {
            "budget": round(budget, 2),
            "median_duration": bluegreen["median_duration"],
            "met": bluegreen["median_duration"] <= budget,
            "median_rollout": rollout,
            "rollout_met": rollout is not None and rollout <= budget,
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "release.json").write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print_table(results)
    return 0


def print_table(results: dict[str, Any]) -> None:
    """The per-strategy table and the blue/green verdict."""
    load = results["load"]
    print(
        f"\nrelease bench: {results['app']}, {results['cpus']} CPUs, test gate {results['test_gate']}; "
        f"load {load['achieved_rate']} req/s, {load['requests']} requests ({load['posts']} POST), "
        f"{load['failed']} failed; load average {results['loadavg_before'][0]} before, "
        f"{results['loadavg_after'][0]} after"
    )
    header = (
        f"{'strategy':<19}{'durations (s)':<34}{'median':>7}{'warm launch':>12}"
        f"{'rel. phase':>11}{'rollout':>9}{'failed':>7}{'stale':>6}"
    )
    print(header)
    for name, row in results["strategies"].items():
        durations = " ".join("-" if d is None else f"{d:.1f}" for d in row["durations"])
        print(
            f"{name:<19}{durations:<34}{_fmt(row['median_duration']):>7}{_fmt(row['warm_launch']):>12}"
            f"{_fmt(row['median_release_phase']):>11}{_fmt(row['median_rollout']):>9}"
            f"{row['failed']:>7}{row['stale']:>6}"
        )
    for name, row in results["strategies"].items():
        for line in row["not_released"]:
            print(f"{name}: not released: {line}")
    target = results.get("bluegreen_target")
    if target:
        verdict = "met" if target["met"] else "NOT met"
        print(
            f"blue/green target (median ≤ warm launch + 2 s = {target['budget']:.2f}s): {verdict} "
            f"({target['median_duration']:.2f}s); without the release phase (rollout only): "
            f"{'met' if target['rollout_met'] else 'NOT met'} ({_fmt(target['median_rollout'])}s)"
        )
    if results["teardown"]:
        print("teardown:", "; ".join(results["teardown"]))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())

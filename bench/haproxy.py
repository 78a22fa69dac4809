"""The HAProxy engine: its cost next to a bare HAProxy, and 10 blue/green releases under `wrk -c64`.

Needs `wrk` and `haproxy` (Debian: `apt-get install wrk haproxy`); installs nothing, writes under /tmp,
kills every process it started by PID at the end.

    .venv/bin/python bench/haproxy.py [--rounds 3] [--duration 8] [--releases 10] [--only engine,releases]

1. engine: two uvicorn backends behind (a) a bare HAProxy (one backend, two servers, no log, no header
   added), (a') the same with `option forwardfor` (the X-Forwarded-For line nearly every HAProxy in front
   of an app carries, and the HAProxy of bench/router.py's peer table), (b) the same job by hand: a static
   HAProxy config a user would write to do what the engine does per request (access log line, request id,
   forwarding headers, retries of idempotent requests, health checks), and (c) the HAProxy Sprout runs for
   `--engine haproxy` (its generated config, the route and targets set over the runtime API, the access
   log written): `wrk -t2` at -c64 and -c256, rounds rotated, medians printed with the engine/bare,
   engine/forwardfor and engine/by-hand ratios (goal: req/s ≥ 0.95x, p99 ≤ 1.2x). (b) against (a) is the
   price of the features; (c) against (b) is the price of Sprout's runtime-driven routing. Beside each:
   the CPU per request of the proxy, of the two backends (which parse what the proxy adds) and of the
   engine's shipper, from the processes' own CPU counters.
2. releases: `sprout up --engine haproxy` of examples/hello (2 instances, blue/green, 2 s drain) under its
   own SPROUT_HOME, then `--releases` x `sprout deploy` while `wrk -c64` runs through HAProxy for the whole
   time; prints wrk's non-2xx and socket-error counts (goal: 0 and 0).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from router import Processes, cpu_seconds, free_port, wait_port  # noqa: E402
from sprout.router.config import RouterConfig  # noqa: E402
from sprout.router.haproxy.admin import HaproxyAdmin  # noqa: E402
from sprout.router.haproxy.config import Layout, find_haproxy, write_config  # noqa: E402
from sprout.router.table import parse_table  # noqa: E402

HOST = "hello.localhost"
BENCH_MANIFEST = """
[scaling]
enabled = false

[deploy]
strategy = "bluegreen"
drain = "2s"
rollback_window = "5s"
health_timeout = "90s"
"""


def bare_conf(folder: Path, port: int, backends: list[int], forwardfor: bool = False) -> Path:
    """The bare HAProxy: the same defaults Sprout's config starts from, one backend, no log; with
    `forwardfor`, HAProxy's own X-Forwarded-For header on each request."""
    servers = "\n".join(f"  server b{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
    conf = folder / ("forwardfor.cfg" if forwardfor else "bare.cfg")
    option = "\n  option forwardfor" if forwardfor else ""
    conf.write_text(f"""
global
  maxconn 4096
defaults
  mode http
  option http-keep-alive{option}
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend web
  bind 127.0.0.1:{port}
  default_backend app
backend app
  balance roundrobin
{servers}
""")
    return conf


def by_hand_conf(folder: Path, port: int, backends: list[int]) -> Path:
    """A static HAProxy doing the engine's per-request work: log line, request id, headers, retries, checks."""
    servers = "\n".join(f"  server b{i} 127.0.0.1:{p} check" for i, p in enumerate(backends))
    log_format = (
        '{\\"time\\":%Ts.%ms,\\"request_id\\":\\"%ID\\",\\"host\\":\\"%{+E}[capture.req.hdr(0)]\\",'
        '\\"method\\":\\"%HM\\",\\"path\\":\\"%{+E}HU\\",\\"status\\":%ST,\\"bytes\\":%B,'
        '\\"duration\\":%Ta%[str(e-3)],\\"target\\":\\"%s\\",\\"retries\\":%rc}'
    )
    conf = folder / "by-hand.cfg"
    conf.write_text(f"""
global
  maxconn 4096
  log stdout format raw local0 info
defaults
  mode http
  log global
  option dontlognull
  option http-keep-alive
  option redispatch 1
  retries 3
  retry-on conn-failure empty-response response-timeout
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend web
  bind 127.0.0.1:{port}
  http-request capture req.hdr(host) len 256
  unique-id-format %{{+X}}o%Ts%rt%pid
  http-request set-header X-Request-Id %[unique-id]
  http-request set-header X-Forwarded-For %[src]
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-after-response set-header X-Request-Id %[unique-id]
  http-request disable-l7-retry unless METH_GET || METH_OPTIONS
  log-format "{log_format}"
  default_backend app
backend app
  no log
  balance roundrobin
  option httpchk
  http-check send meth GET uri / ver HTTP/1.1 hdr Host localhost
  http-check expect rstatus ^[23]
{servers}
""")
    return conf


def wrk(port: int, connections: int, duration: int, host: str = HOST) -> dict[str, float]:
    """One wrk run: req/s, p50 and p99 in ms, non-2xx answers and socket errors."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
           "-H", f"Host: {host}", f"http://127.0.0.1:{port}/"]  # fmt: skip
    return parse_wrk(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def parse_wrk(out: str) -> dict[str, float]:
    """The figures of a wrk report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockerr = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {
        "rps": rps,
        "p50": lat.get("50", 0.0),
        "p99": lat.get("99", 0.0),
        "requests": float(requests.group(1)) if requests else 0.0,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "sockerr": float(sum(int(g) for g in sockerr.groups())) if sockerr else 0.0,
    }


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    assert m, value
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def engine_table(backends: list[int], default: bool = True) -> dict[str, object]:
    """One route for HOST with one group of the two backends, as the control plane would push it."""
    targets = [
        {"id": f"i-bench{i}", "address": f"127.0.0.1:{p}", "healthy": True} for i, p in enumerate(backends)
    ]
    return {"routes": [{"name": "hello-production", "hosts": [HOST], "default": default,
                        "groups": [{"name": "blue", "weight": 100, "version": "v1", "targets": targets}]}]}  # fmt: skip


def start_backends(procs: Processes) -> list[int]:
    """Two uvicorn backends (bench/router.py's app) on free ports, answering."""
    backends = [free_port(), free_port()]
    for i, port in enumerate(backends):
        procs.start(
            f"backend{i}", [sys.executable, str(REPO / "bench" / "router.py"), "--serve-backend", str(port)]
        )
    for port in backends:
        wait_port(port)
    return backends


def start_engine(
    folder: Path, procs: Processes, port: int, logs: Path, table: dict[str, object], *shipper_args: str
) -> tuple[HaproxyAdmin, int, int]:
    """The HAProxy engine as `sprout up` runs it: its config, its shipper writing under `logs`, `table`
    applied over the runtime API. Returns the admin and the pids of HAProxy and the shipper."""
    layout = Layout(folder / "engine")
    config = write_config(layout, f"127.0.0.1:{port}", RouterConfig())
    logs.mkdir(exist_ok=True)
    shipper = procs.start(
        "shipper",
        [sys.executable, "-m", "sprout.router.haproxy.shipper", "--socket", str(layout.access_socket),
         "--notable-log", str(logs / "router-access.log"), *shipper_args],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    haproxy = procs.start("engine", [find_haproxy(), "-db", "-f", str(config)])
    admin = HaproxyAdmin(layout)
    deadline = time.monotonic() + 15
    while not admin.ping():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the engine's HAProxy did not start; see {folder / 'engine.log'}")
        time.sleep(0.05)
    admin.apply(parse_table(table), restored=True)
    return admin, haproxy.pid, shipper.pid


def bench_engine(args: argparse.Namespace, folder: Path, procs: Processes) -> None:
    backends = start_backends(procs)
    backend_pids = [proc.pid for proc in procs.procs]
    bare_port, fwd_port, hand_port, engine_port = free_port(), free_port(), free_port(), free_port()
    bare = procs.start("bare", [find_haproxy(), "-db", "-f", str(bare_conf(folder, bare_port, backends))])
    fwd = procs.start(
        "forwardfor",
        [find_haproxy(), "-db", "-f", str(bare_conf(folder, fwd_port, backends, forwardfor=True))],
    )
    with open(folder / "by-hand-access.log", "ab") as out, open(folder / "by-hand.log", "ab") as err:
        by_hand = subprocess.Popen(
            [find_haproxy(), "-db", "-f", str(by_hand_conf(folder, hand_port, backends))],
            stdout=out,
            stderr=err,
        )
    procs.procs.append(by_hand)  # type: ignore[arg-type]
    # The engine's access lines go, as under `sprout up`, through its ring to the shipper (niced), which
    # appends them to the access files; rotation is set past the bench's volume so one file counts them.
    logs = folder / "engine-logs"
    _, engine_pid, shipper_pid = start_engine(
        folder, procs, engine_port, logs, engine_table(backends), "--rotate-bytes", str(1 << 40)
    )
    access = logs / "access" / "current.log"
    # name, port, the proxy's pid, the pid of its log shipper (the by-hand one writes to its stdout file)
    contenders = [
        ("bare", bare_port, bare.pid, 0),
        ("forwardfor", fwd_port, fwd.pid, 0),
        ("by-hand", hand_port, by_hand.pid, 0),
        ("engine", engine_port, engine_pid, shipper_pid),
    ]
    for _, port, _, _ in contenders:
        wait_port(port)
        wrk(port, 64, 2)  # warm-up
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    for rnd in range(args.rounds):
        for connections in (64, 256):
            # Rotated each round, so no contender always runs first or last.
            shift = rnd % len(contenders)
            for name, port, proxy, shipper in contenders[shift:] + contenders[:shift]:
                pids = {"proxy": [proxy], "backends": backend_pids, "shipper": [shipper] if shipper else []}
                before = {
                    part: sum(cpu_seconds(pid, children=False) for pid in group)
                    for part, group in pids.items()
                }
                result = wrk(port, connections, args.duration)
                time.sleep(0.3)  # the shipper's last batch of this run
                for part, group in pids.items():
                    spent = sum(cpu_seconds(pid, children=False) for pid in group) - before[part]
                    result[f"{part}_us"] = spent / max(result["requests"], 1.0) * 1e6
                results.setdefault((name, connections), []).append(result)
    time.sleep(1.0)  # the shipper's last batch
    lines = access.read_bytes().count(b"\n") if access.exists() else 0
    print(
        f"\n[engine] {args.rounds} rounds x {args.duration}s, wrk -t2; medians; load {os.getloadavg()[0]:.1f}"
        "\n  CPU per request (µs): the proxy, the two backends together, the engine's shipper"
    )
    print(
        f"{'':10} {'c':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'proxy':>7} {'backends':>9} {'shipper':>8}"
    )
    keys = ("rps", "p50", "p99", "proxy_us", "backends_us", "shipper_us")
    for connections in (64, 256):
        med = {}
        for name, _, _, _ in contenders:
            runs = results[(name, connections)]
            med[name] = {k: statistics.median(r[k] for r in runs) for k in keys}
            errors = sum(r["non2xx"] + r["sockerr"] for r in runs)
            m = med[name]
            print(
                f"{name:10} {connections:>4} {m['rps']:>9.0f} {m['p50']:>8.2f} {m['p99']:>8.2f} {errors:>7.0f}"
                f" {m['proxy_us']:>7.1f} {m['backends_us']:>9.1f} {m['shipper_us']:>8.1f}"
            )
        for against in ("bare", "forwardfor", "by-hand"):
            ratio = med["engine"]["rps"] / med[against]["rps"]
            p99 = med["engine"]["p99"] / med[against]["p99"] if med[against]["p99"] else float("inf")
            verdict = "ok" if ratio >= 0.95 and p99 <= 1.2 else "MISSED"
            print(
                f"  -c{connections}: engine/{against} req/s {ratio:.3f} (goal ≥ 0.95), p99 {p99:.2f}x "
                f"(goal ≤ 1.2): {verdict}"
            )
    print(f"  access log: {lines} lines written by the engine")


def bench_releases(args: argparse.Namespace, folder: Path, procs: Processes) -> None:
    home, app, port = folder / "home", folder / "app", free_port()
    shutil.copytree(REPO / "examples" / "hello", app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "sprout.toml").write_text((app / "sprout.toml").read_text() + BENCH_MANIFEST)
    env = {**os.environ, "SPROUT_HOME": str(home), "NO_COLOR": "1"}

    def sprout(*cli: str) -> str:
        result = subprocess.run([sys.executable, "-m", "sprout", *cli], env=env, capture_output=True,
                                text=True, timeout=300, cwd=folder)  # fmt: skip
        if result.returncode:
            raise RuntimeError(
                f"sprout {' '.join(cli)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    try:
        sprout("up", str(app), "--port", str(port), "--engine", "haproxy")
        # Stopped by SIGINT (wrk then prints its report) once the releases are done; the bound is a backstop.
        budget = args.releases * 120 + 60
        load = subprocess.Popen(
            ["wrk", "-t2", "-c64", f"-d{budget}s", "--latency", "--timeout", "10s", "-H", f"Host: {HOST}",
             f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.procs.append(load)  # type: ignore[arg-type]
        time.sleep(3)
        took = []
        for n in range(args.releases):
            (app / "marker.txt").write_text(f"release {n}")
            started = time.monotonic()
            out = sprout("deploy", str(app), "--strategy", "bluegreen", "--skip-tests")
            took.append(time.monotonic() - started)
            print(f"  release {n + 1}: {took[-1]:.1f}s {out.strip().splitlines()[-1][:100]}")
        time.sleep(3)
        if load.poll() is not None:
            print("  (wrk ended before the last release: raise the bound)")
        load.send_signal(2)
        report = parse_wrk(load.communicate(timeout=30)[0])
        print(
            f"\n[releases] {args.releases} blue/green releases under wrk -c64 (HAProxy engine): "
            f"{report['requests']:.0f} requests, {report['rps']:.0f} req/s, p99 {report['p99']:.1f} ms, "
            f"non-2xx {report['non2xx']:.0f}, socket errors {report['sockerr']:.0f}; "
            f"release median {statistics.median(took):.1f}s; load {os.getloadavg()[0]:.1f}"
        )
        if report["non2xx"]:
            print(f"  non-2xx in the access log: {not_ok(home / 'logs' / 'router-access.log')}")
    finally:
        subprocess.run([sys.executable, "-m", "sprout", "down", str(app)], env=env, capture_output=True,
                       timeout=120, cwd=folder)  # fmt: skip


def not_ok(access: Path) -> dict[str, int]:
    """Answers other than 2xx in an access log, counted by status and target."""
    found: dict[str, int] = {}
    for line in access.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not 200 <= int(row.get("status", 0)) < 300:
            key = f"{row.get('status')} {row.get('target')}"
            found[key] = found.get(key, 0) + 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--releases", type=int, default=10)
    parser.add_argument("--only", default="engine,releases")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/haproxy.py: wrk is missing; install it with `apt-get install wrk`")
    find_haproxy()
    folder = Path(tempfile.mkdtemp(prefix="sprout-bench-haproxy-", dir="/tmp"))
    # Under root the apps run as users of their own, who must pass through it to their folders.
    folder.chmod(0o711)
    procs = Processes(folder)
    try:
        if "engine" in args.only:
            bench_engine(args, folder, procs)
        if "releases" in args.only:
            bench_releases(args, folder, procs)
    finally:
        procs.stop_all()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Microsite throughput through the router with 1 vs 2 instances (MariaDB + replicated memcached sessions).

For each instance count it starts that many `uvicorn microsite.app:app` processes (zones a, b) against a
scratch MariaDB database and two managed memcached nodes, puts the Sprout router in front, then measures
  - catalogue: `GET /` with wrk (closed loop, --connections connections, --duration seconds);
  - checkout: --users closed-loop shoppers, each `POST /cart/add` then `POST /checkout` (a real order in
    one transaction); the figures are for the checkout request, the rate counts completed orders;
and prints req/s, p50, p99 and the 2-instance/1-instance ratio.  A direct run (1 instance, no router)
gives the router's overhead.  Everything runs on loopback and stops by pid; the database is dropped.

    .venv/bin/python bench/microsite.py [--duration 10] [--connections 32] [--users 16]

Mind the machine: the load generators, router, instances, MariaDB and memcached share its CPUs, so a
2-instance gain is bounded by the cores left over (the script prints how many there are).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import sqlalchemy as sa  # noqa: E402

from sprout.router.client import RouterAdmin  # noqa: E402
from sprout.services import database, memcached  # noqa: E402

APP_DIR = REPO / "examples" / "microsite"
HOST = "microsite.localhost"
OUT = REPO / "bench" / "out"


@dataclass
class Figures:
    """One measurement: rate and latency percentiles in milliseconds."""

    rate: float
    p50: float
    p99: float
    errors: int

    def row(self, label: str) -> str:
        return f"{label:<34} {self.rate:>9.1f} {self.p50:>9.2f} {self.p99:>9.2f} {self.errors:>7}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_http(port: int, path: str, host: str = "127.0.0.1", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path, headers={"Host": host})
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"127.0.0.1:{port}{path} did not answer 200 in {timeout}s")


def start_instance(env: dict[str, str], zone: str, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = env | {"PORT": str(port), "HOST": "127.0.0.1", "SPROUT_ZONE": zone, "SPROUT_INSTANCE": f"i-{zone}"}
    cmd = [sys.executable, "-m", "uvicorn", "microsite.app:app", "--host", "127.0.0.1", "--port", str(port)]
    with open(work / f"instance-{zone}.log", "ab") as log:
        proc = subprocess.Popen(
            [*cmd, "--no-access-log"], cwd=APP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    wait_http(port, "/healthz")
    return proc, port


def start_router(work: Path) -> tuple[subprocess.Popen[str], int, RouterAdmin]:
    (work / "router.token").write_text("bench-token\n")
    (work / "router.token").chmod(0o600)
    cmd = [
        sys.executable, "-m", "sprout.router", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        "--token-file", str(work / "router.token"), "--state", str(work / "router.json"),
        "--access-log", str(work / "access.log"),
    ]  # fmt: skip
    env = {**os.environ, "SPROUT_HOME": str(work / "home")}
    with open(work / "router.err", "a") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    assert proc.stdout is not None
    words = proc.stdout.readline().split()
    if len(words) < 7:
        stop(proc)
        raise RuntimeError(f"router did not start; see {work / 'router.err'}")
    return proc, int(words[3].rsplit(":", 1)[1]), RouterAdmin(f"http://{words[6]}", "bench-token")


def route(admin: RouterAdmin, ports: list[int], router_port: int) -> None:
    targets = [
        {"id": f"i-{z}", "address": f"127.0.0.1:{p}", "zone": z, "version": "bench"}
        for z, p in zip("ab", ports, strict=False)
    ]
    health = {
        "path": "/healthz",
        "interval": 1.0,
        "timeout": 5.0,
        "healthy_threshold": 1,
        "unhealthy_threshold": 5,
    }
    admin.put_table(
        {"routes": [{"name": "microsite", "hosts": [HOST], "health": health,
                     "groups": [{"name": "blue", "targets": targets}]}]}
    )  # fmt: skip
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while len(seen) < len(ports) and time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", router_port, timeout=5)
        conn.request("GET", "/healthz", headers={"Host": HOST})
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            seen.add(response.getheader("X-Sprout-Instance") or "")
        conn.close()
    if len(seen) < len(ports):
        raise RuntimeError(f"router reached only {seen}")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(port: int, duration: int, connections: int) -> Figures:
    """`GET /` through wrk with a latency distribution."""
    threads = str(min(connections, 2))
    cmd = ["wrk", "-t", threads, "-c", str(connections), "-d", f"{duration}s", "--latency"]
    cmd += ["-H", f"Host: {HOST}", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout

    def percentile(p: str) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = int(errors.group(1)) if errors else 0
    failed += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return Figures(float(rate.group(1)) if rate else 0.0, percentile("50"), percentile("99"), failed)


def shoppers(port: int, duration: int, users: int, product_ids: list[int]) -> Figures:
    """Closed-loop shoppers: add to cart, check out; figures for the checkout request.

    Shopper i buys product i mod 20, so the figure is the app tier's, not one hot row's lock queue.
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def shopper(product_id: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        cookie = ""
        mine: list[float] = []
        failed = 0
        while time.monotonic() < deadline:
            form = {
                "Host": HOST,
                "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
            }
            headers = form | ({"Cookie": cookie} if cookie else {})
            conn.request("POST", "/cart/add", body=f"product_id={product_id}", headers=headers)
            response = conn.getresponse()
            response.read()
            set_cookie = response.getheader("Set-Cookie")
            if set_cookie:
                cookie = set_cookie.split(";", 1)[0]
            headers = {"Host": HOST, "Accept": "application/json", "Cookie": cookie, "Content-Length": "0"}
            started = time.perf_counter()
            conn.request("POST", "/checkout", headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 201:
                mine.append((time.perf_counter() - started) * 1000)
            else:
                failed += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    started = time.monotonic()
    threads = [
        threading.Thread(target=shopper, args=(product_ids[i % len(product_ids)],)) for i in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if not latencies:
        return Figures(0.0, float("nan"), float("nan"), errors[0])
    cuts = statistics.quantiles(latencies, n=100)
    return Figures(len(latencies) / elapsed, cuts[49], cuts[98], errors[0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"sprout-bench-microsite-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    db_url = f"mysql://root@127.0.0.1:3306/bench_microsite_{uuid.uuid4().hex[:10]}"
    database.ensure_database(db_url)
    nodes = memcached.start_nodes(["a", "b"], memory_mb=64, log_dir=work)
    procs: list[subprocess.Popen[Any]] = []
    results: dict[str, Any] = {"cpus": os.cpu_count(), "duration_s": args.duration}
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(APP_DIR),
            "SPROUT_APP": "microsite",
            "SPROUT_ENV": "bench",
            "SPROUT_VERSION": "bench",
            "DATABASE_URL": db_url,
            "SESSION_STORE_URL": memcached.session_store_url(nodes),
            "SESSION_SECRET": "bench-secret",
        }
        subprocess.run([sys.executable, "-m", "microsite.migrate"], cwd=APP_DIR, env=env, check=True)
        engine = sa.create_engine(database.normalise_url(db_url))
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE products SET stock = 1000000000"))  # measure orders, not sell-outs
            product_ids = [
                int(i) for i in conn.execute(sa.text("SELECT id FROM products ORDER BY id")).scalars()
            ]
        engine.dispose()

        first, first_port = start_instance(env, "a", work)
        procs.append(first)
        results["direct_1"] = {"catalogue": wrk(first_port, args.duration, args.connections).__dict__}
        router, router_port, admin = start_router(work)
        procs.append(router)
        ports = [first_port]
        for count in (1, 2):
            if count == 2:
                second, second_port = start_instance(env, "b", work)
                procs.append(second)
                ports.append(second_port)
            route(admin, ports, router_port)
            catalogue = wrk(router_port, args.duration, args.connections)
            checkout = shoppers(router_port, args.duration, args.users, product_ids)
            results[f"router_{count}"] = {"catalogue": catalogue.__dict__, "checkout": checkout.__dict__}
        admin.close()
    finally:
        for proc in reversed(procs):
            stop(proc)
        memcached.stop_nodes(nodes)
        database.drop_database(db_url)
        shutil.rmtree(work, ignore_errors=True)
    for kind in ("catalogue", "checkout"):
        one, two = results["router_1"][kind]["rate"], results["router_2"][kind]["rate"]
        results[f"scaling_{kind}"] = round(two / one, 2) if one else None
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for the catalogue")
    parser.add_argument("--users", type=int, default=16, help="closed-loop shoppers for checkout")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/microsite.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops every process it started
    results = run(args)
    print(
        f"microsite bench: {results['cpus']} CPUs shared by load generator, router, app, MariaDB, memcached"
    )
    print(f"{'measurement':<34} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
    print(Figures(**results["direct_1"]["catalogue"]).row("catalogue, 1 instance, no router"))
    for count in (1, 2):
        for kind in ("catalogue", "checkout"):
            label = f"{kind}, {count} instance{'s' if count == 2 else ''}, router"
            print(Figures(**results[f"router_{count}"][kind]).row(label))
    print(
        f"scaling 2/1 instances: catalogue {results['scaling_catalogue']}x, checkout {results['scaling_checkout']}x"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "microsite.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

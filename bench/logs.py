"""Benchmark the log pipeline: daemon CPU per access-log line, bytes per request on disk, time to grep.

A writer process drives the router's own `AccessLog` at a steady rate (default 20,000 requests/s, 1 % of
them errors and 0.2 % slow, as the router's flush does it: a batch a second); an ingester process runs the
daemon's `LogIngester` (the log store, the access files' compression and retention) exactly as the daemon
wires it. Prints the ingester's CPU per line (psutil, before/after), the disk the logs take per request,
and how long `sprout logs --grep <path>` (the same query code) takes to find the last request.

    .venv/bin/python bench/logs.py [--rate 20000] [--seconds 20] [--rotate-mb 16] [--sample 1.0]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable


def writer(folder: Path, rate: int, seconds: float, rotate_mb: float, sample: float) -> None:
    from sprout.router.accesslog import AccessLog

    log = AccessLog(folder / "router-access.log", sample=sample, rotate_bytes=int(rotate_mb * 1024 * 1024))
    rng = random.Random(7)
    rid = os.urandom(4).hex().encode() + b"-%x"
    targets = [b"shop-production-g-i-3f9c\tv12\ta", b"shop-production-g-i-a1b2\tv12\ta"]
    started = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate)
        while n < due:
            roll = rng.random()
            status = 502 if roll < 0.01 else 200
            duration = 1.5 if 0.01 <= roll < 0.012 else 0.0008 + roll / 1000
            path = b"/item/%d?ref=%d" % (rng.randrange(5000), rng.randrange(100))
            log.record((time.time(), rid % n, b"shop.localhost", b"GET", path, status, rng.randrange(500, 20000),
                        duration, targets[n % 2], 0, b"shop-production"))  # fmt: skip
            n += 1
        log.flush()
        time.sleep(1.0)
    log.record((time.time(), b"last-request", b"shop.localhost", b"GET", b"/the-last-one", 200, 2, 0.001,
                b"t\tv12\ta", 0, b"shop-production"))  # fmt: skip
    log.close()
    print(n + 1, flush=True)


def ingester(folder: Path, home: Path) -> None:
    from sprout.accessfiles import AccessFiles, Settings
    from sprout.logs.ingest import LogIngester
    from sprout.logs.store import LogStore

    store = LogStore(home / "logs.db")
    notable = folder / "router-access.log"
    ing = LogIngester(
        store,
        lambda: [(notable, "router")] if notable.exists() else [],
        access=AccessFiles(folder / "access"),
        settings=Settings.from_env(),
    )
    ing.start()
    sys.stdin.read()
    ing.stop()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rotate-mb", type=float, default=16.0, help="smaller than the default 64 so that "
                        "rotation and compression happen within the run and are counted")  # fmt: skip
    parser.add_argument("--sample", type=float, default=1.0)
    parser.add_argument("--role", choices=("writer", "ingester"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "writer":
        writer(args.folder, args.rate, args.seconds, args.rotate_mb, args.sample)
        return
    if args.role == "ingester":
        ingester(args.folder, args.folder)
        return
    import psutil

    from sprout.accessfiles import AccessFiles
    from sprout.controlplane.logquery import query_logs
    from sprout.logs.store import LogStore

    folder = Path(tempfile.mkdtemp(prefix="sprout-bench-logs-", dir="/tmp"))
    me = [PY, __file__, "--folder", str(folder)]
    ing = subprocess.Popen([*me, "--role", "ingester"], stdin=subprocess.PIPE)
    try:
        time.sleep(1.0)
        cpu = psutil.Process(ing.pid)
        before = sum(cpu.cpu_times()[:2])
        out = subprocess.run(
            [*me, "--role", "writer", "--rate", str(args.rate), "--seconds", str(args.seconds),
             "--rotate-mb", str(args.rotate_mb), "--sample", str(args.sample)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        lines = int(out.split()[-1])
        written = time.monotonic()
        store = LogStore(folder / "logs.db")
        access = AccessFiles(folder / "access")
        found = 0
        while not found and time.monotonic() - written < 10:
            found = len(query_logs(store, {"grep": "/the-last-one", "source": "router"}, access)["lines"])
        grep_s = time.monotonic() - written
        time.sleep(2.0)  # one more pass: the last rotated file compressed
        cpu_s = sum(cpu.cpu_times()[:2]) - before
        started = time.monotonic()
        errors = len(
            query_logs(store, {"grep": "502", "source": "router", "limit": "10000"}, access)["lines"]
        )
        error_grep_s = time.monotonic() - started
        started = time.monotonic()
        hits = len(
            query_logs(store, {"grep": "/item/4999", "source": "router", "limit": "10000"}, access)["lines"]
        )
        ok_grep_s = time.monotonic() - started
        store.close()
        ing.communicate(b"", timeout=30)
        db = sum(p.stat().st_size for p in folder.glob("logs.db*"))
        files = access.disk_bytes()
        print(
            f"{lines} requests in {args.seconds:.0f}s ({lines / args.seconds:.0f}/s), sample {args.sample}, "
            f"rotate at {args.rotate_mb} MiB; load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"ingester CPU: {cpu_s:.2f}s = {cpu_s / lines * 1e6:.2f} us per line "
            f"(indexing errors/slow, gzipping rotated files, retention)"
        )
        print(
            f"disk: log store {db / 1e6:.1f} MB + access files {files / 1e6:.1f} MB "
            f"({len(access.files())} files) = {(db + files) / lines:.0f} bytes per request"
        )
        print(
            f"grep for the last request found it {grep_s:.2f}s after the writer's last flush; "
            f"'502' found {errors} error lines in {error_grep_s:.2f}s; '/item/4999' found {hits} in {ok_grep_s:.2f}s"
        )
    finally:
        if ing.poll() is None:
            ing.kill()
            ing.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

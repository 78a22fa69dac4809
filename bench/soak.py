"""The platform left running under load: memory, descriptors, disk and CPU per request must stay flat.

`sprout up` of bench/router.py's ASGI app (2 uvicorn instances) under a scratch SPROUT_HOME, central logs
on, on either engine; then `wrk -t2 -c64` through the router in back-to-back intervals for --minutes.
After each interval: req/s, p99, non-2xx and socket errors; CPU µs per request, RSS and open descriptors
of each part (router worker and supervisor or HAProxy and its shipper, the daemon, the instance agents,
the apps); the disk the logs take (the log store, the access files' bytes and count). The access files
rotate at --rotate-mb and are kept to --keep-mb (small by default, so rotation, compression and pruning
run many times in a few minutes). At the end: how long after its answer `sprout logs --grep` finds one
more request, and each part's RSS and descriptors after the first interval and after the last.

    .venv/bin/python bench/soak.py [--engine sprout|haproxy] [--minutes 5] [--interval 30]
                                   [--connections 64] [--rotate-mb 4] [--keep-mb 20]

Needs `wrk` (and `haproxy` for --engine haproxy); installs nothing. Everything runs as the current user
under a /tmp folder that is removed at the end, with every process of the stack stopped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from router import Stack, wrk  # noqa: E402

ROLES = ("worker", "router", "haproxy", "shipper", "daemon", "agents", "apps")


def role(cmdline: list[str]) -> str:
    """Which part of the stack a process is, from its command line."""
    cmd = " ".join(cmdline)
    if "sprout.router.worker" in cmd:
        return "worker"
    if "sprout.router.haproxy.shipper" in cmd:
        return "shipper"
    if "sprout.router" in cmd:
        return "router"
    if cmdline and Path(cmdline[0]).name == "haproxy":
        return "haproxy"
    if "sprout.controlplane" in cmd:
        return "daemon"
    if "sprout.agent" in cmd:
        return "agents"
    return "apps"


def sample(stack: Stack) -> dict[str, dict[str, float]]:
    """CPU seconds, RSS (MiB) and open descriptors of every part, each summed over its processes."""
    import psutil

    found: dict[int, Any] = {}
    for proc in stack.processes():
        found[proc.pid] = proc
        for child in proc.children(recursive=True):
            found[child.pid] = child
    parts = {name: {"cpu": 0.0, "rss": 0.0, "fds": 0.0} for name in ROLES}
    for proc in found.values():
        try:
            with proc.oneshot():
                part = parts[role(proc.cmdline())]
                times = proc.cpu_times()
                part["cpu"] += times.user + times.system
                part["rss"] += proc.memory_info().rss / 2**20
                part["fds"] += proc.num_fds()
        except psutil.Error:
            continue
    return {name: part for name, part in parts.items() if part["rss"]}


def disk(home: Path) -> tuple[float, float, int]:
    """MiB of the log store, MiB and count of the access files."""
    store = sum(p.stat().st_size for p in home.glob("logs.db*"))
    access = [p for p in (home / "logs" / "access").glob("*") if p.is_file()]
    return store / 2**20, sum(p.stat().st_size for p in access) / 2**20, len(access)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=("sprout", "haproxy"), default="sprout")
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--interval", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rotate-mb", type=float, default=4, help="SPROUT_ACCESS_ROTATE_MB for the daemon")
    parser.add_argument("--keep-mb", type=float, default=20, help="SPROUT_ACCESS_KEEP_MB for the daemon")
    args = parser.parse_args()
    missing = [t for t in ("wrk", *(("haproxy",) if args.engine == "haproxy" else ())) if not shutil.which(t)]
    if missing:
        sys.exit(
            f"bench/soak.py: missing {', '.join(missing)}; install with `apt-get install {' '.join(missing)}`"
        )
    os.environ["SPROUT_ACCESS_ROTATE_MB"] = str(args.rotate_mb)
    os.environ["SPROUT_ACCESS_KEEP_MB"] = str(args.keep_mb)
    folder = Path(tempfile.mkdtemp(prefix="sprout-bench-soak-", dir="/tmp"))
    stack = Stack(folder, engine=args.engine)
    try:
        stack.up()
        soak(stack, args)
    finally:
        stack.down()
        shutil.rmtree(folder, ignore_errors=True)


def soak(stack: Stack, args: argparse.Namespace) -> None:
    """Run the intervals, print a row per interval, then each part at the first and last interval."""
    rounds = max(2, round(args.minutes * 60 / args.interval))
    print(f"engine {args.engine}, {rounds} x wrk -t2 -c{args.connections} -d{args.interval}s, access files "
          f"rotated at {args.rotate_mb} MiB and kept to {args.keep_mb} MiB; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    before = sample(stack)
    parts = list(before)
    print(f"{'t':>5} {'requests':>9} {'req/s':>7} {'p99 ms':>7} {'errors':>6}  "
          + "  ".join(f"{p + ' µs/MiB/fds':>22}" for p in parts) + f"  {'store MiB':>9} {'access MiB':>10} {'files':>5}")  # fmt: skip
    start, total = time.monotonic(), 0
    rows: list[dict[str, dict[str, float]]] = []
    for _ in range(rounds):
        result = wrk(stack.port, args.connections, args.interval)
        after = sample(stack)
        requests = result["rps"] * args.interval
        total += int(requests)
        store, access, files = disk(stack.home)
        cells = []
        for p in parts:
            now = after.get(p, {"cpu": 0.0, "rss": 0.0, "fds": 0.0})
            used = (now["cpu"] - before.get(p, now)["cpu"]) / requests * 1e6
            cells.append(f"{used:>8.1f} {now['rss']:>6.1f} {now['fds']:>5.0f}")
        errors = result["non2xx"] + result["sockerr"]
        print(f"{time.monotonic() - start:>5.0f} {total:>9} {result['rps']:>7.0f} {result['p99']:>7.1f} "
              f"{errors:>6.0f}  " + "  ".join(f"{c:>22}" for c in cells)
              + f"  {store:>9.1f} {access:>10.1f} {files:>5}", flush=True)  # fmt: skip
        rows.append(after)
        before = after
    path = f"/soak-{os.getpid()}-{total}"
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}{path}", timeout=10) as answer:
        answer.read()
    sent = time.monotonic()
    while True:
        began = time.monotonic()
        found = path in stack.sprout("logs", "--grep", path, "--since", "5m")
        ended = time.monotonic()
        if found or ended - sent > 30:
            break
        time.sleep(0.1)
    print(
        f"`sprout logs --grep {path}` {'found' if found else 'did NOT find'} the request {ended - sent:.2f} s "
        f"after its answer (that search: {ended - began:.2f} s, started {began - sent:.2f} s after the answer)"
    )
    first, last = rows[0], rows[-1]
    for p in parts:
        if p in first and p in last:
            print(f"{p:<8} RSS {first[p]['rss']:.1f} -> {last[p]['rss']:.1f} MiB, "
                  f"descriptors {first[p]['fds']:.0f} -> {last[p]['fds']:.0f} (interval 1 -> {len(rows)})")  # fmt: skip
    store, access, files = disk(stack.home)
    bound = args.keep_mb + args.rotate_mb
    verdict = "within" if access <= bound else "OVER"
    print(f"access files {access:.1f} MiB in {files} files: {verdict} keep + one rotation ({bound:.0f} MiB)")


if __name__ == "__main__":
    main()

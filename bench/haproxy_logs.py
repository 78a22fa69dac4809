"""The HAProxy engine's access log: shipper and daemon CPU per request, and lines lost, under `wrk`.

Needs `wrk` and `haproxy` (Debian: `apt-get install wrk haproxy`); installs nothing, writes under /tmp,
kills every process it started by PID at the end.

    .venv/bin/python bench/haproxy_logs.py [--duration 8] [--connections 64] [--sample 1.0]

Two uvicorn backends behind the HAProxy Sprout runs for `--engine haproxy` (its generated config, the
route set over the runtime API), its access lines forwarded to the shipper (`python -m
sprout.router.haproxy.shipper`, niced), and the daemon's log ingester (bench/logs.py's, wired as the
daemon wires it) indexing the notable log and compressing rotated access files. `wrk -t2` sends 1 % of
its requests to a host without a route (404s: notable, indexed). Prints each process's CPU per request
(psutil, before/after), the lines found in the files against wrk's count and HAProxy's DroppedLogs,
then the shipper's split of a batch alone (in process, µs per line). Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from haproxy import engine_table, start_backends, start_engine  # noqa: E402

from router import Processes, cpu_seconds, free_port  # noqa: E402
from sprout.accessfiles import AccessFiles, parse_line  # noqa: E402
from sprout.router.haproxy.config import find_haproxy  # noqa: E402
from sprout.router.haproxy.shipper import split  # noqa: E402

#: Every 100th request names a host no route serves: HAProxy answers 404, a notable line.
WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  if counter % 100 == 0 then
    return wrk.format("GET", "/missing", {Host = "nowhere.localhost"})
  end
  return wrk.format("GET", "/item/" .. counter, {Host = "hello.localhost"})
end
"""


def wrk_requests(port: int, connections: int, duration: int, script: Path) -> int:
    """Requests wrk completed in one run."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script), f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"(\d+) requests in", out)
    assert found, out
    return int(found.group(1))


def count_lines(logs: Path) -> tuple[int, int, int]:
    """(access-file lines, notable lines, access-file lines that do not parse) under a logs folder."""
    access = AccessFiles(logs / "access")
    ok = bad = 0
    for path in access.files():
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        for line in data.splitlines():
            ok += 1
            bad += parse_line(line.decode("utf-8", "replace")) is None
    notable_log = logs / "router-access.log"
    notable = notable_log.read_bytes().count(b"\n") if notable_log.exists() else 0
    return ok, notable, bad


def bench_pipeline(args: argparse.Namespace, folder: Path, procs: Processes) -> None:
    backends = start_backends(procs)
    logs = folder / "logs"
    port = free_port()
    # Not the default route: the script's other host gets a 404, a notable line.
    admin, haproxy, shipper = start_engine(
        folder, procs, port, logs, engine_table(backends, default=False),
        "--sample", str(args.sample), "--rotate-bytes", str(16 * 1024 * 1024),
    )  # fmt: skip
    ingester = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "logs.py"), "--role", "ingester", "--folder", str(logs)],
        stdin=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    procs.procs.append(ingester)
    script = folder / "wrk.lua"
    script.write_text(WRK_SCRIPT)
    warm = wrk_requests(port, args.connections, 2, script)
    time.sleep(1.0)
    pids = {"haproxy": haproxy, "shipper": shipper, "daemon ingester": ingester.pid}
    before = {name: cpu_seconds(pid, children=False) for name, pid in pids.items()}
    requests = wrk_requests(port, args.connections, args.duration, script)
    time.sleep(2.0)  # the shipper's last batch and the ingester's last pass
    used = {name: cpu_seconds(pid, children=False) - before[name] for name, pid in pids.items()}
    dropped = next(
        (line.split(":")[1].strip() for line in admin.api.ask("show info").splitlines() if line.startswith("DroppedLogs")),
        "?",
    )  # fmt: skip
    ingester.communicate(b"", timeout=30)
    ok, notable, bad = count_lines(logs)
    total = warm + requests
    print(
        f"\n[pipeline] wrk -t2 -c{args.connections} {args.duration}s through the HAProxy engine: "
        f"{requests} requests ({requests / args.duration:.0f}/s), 1 % 404s; sample {args.sample}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for name, seconds in used.items():
        print(f"  {name:16} CPU {seconds:6.2f}s = {seconds / requests * 1e6:6.2f} us per request")
    print(
        f"  lines: {ok} in the access files + {notable} notable = {ok + notable} for {total} requests "
        f"(warm-up included); HAProxy DroppedLogs {dropped}; unparsable access lines {bad}"
    )


def bench_split(lines: int = 200_000) -> None:
    """The shipper's split of one batch alone: the regex over the batch and the notable lines cut out."""
    import random

    rng = random.Random(7)
    rows = []
    for i in range(lines):
        roll = rng.random()
        status = 404 if roll < 0.01 else 200
        ms = 1500 if 0.01 <= roll < 0.012 else rng.randrange(1, 40)
        rows.append(f"1796514304.613\thello-production\tGET\thello.localhost/item/{i}?ref={rng.randrange(100)}\t"
                    f"{status}\t{rng.randrange(500, 20000)}\t{ms}e-3\ti-bench{i % 2}\tv1\t-\t0\t6B14A2{i:010X}\n")  # fmt: skip
    batch = "".join(rows).encode()
    started = time.perf_counter()
    _ok, count, notable = split(batch)
    seconds = time.perf_counter() - started
    print(
        f"\n[split] one batch of {lines} lines ({len(batch) / lines:.0f} bytes each), "
        f"{count} ordinary and {len(notable)} notable: {seconds / lines * 1e6:.3f} us per line"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sample", type=float, default=1.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/haproxy_logs.py: wrk is missing; install it with `apt-get install wrk`")
    find_haproxy()
    folder = Path(tempfile.mkdtemp(prefix="sprout-bench-haproxy-logs-", dir="/tmp"))
    procs = Processes(folder)
    try:
        bench_pipeline(args, folder, procs)
    finally:
        procs.stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    bench_split()


if __name__ == "__main__":
    main()

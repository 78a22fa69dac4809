"""The ingester against real writer processes: new lines are queryable within 2 s, and killing the
ingesting process mid-stream (a daemon `kill -9`) neither loses nor duplicates a line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprout.logs.ingest import LogIngester
from sprout.logs.store import LogRow, LogStore

# Appends `count` instance lines and `count` router lines, `gap` seconds apart; every instance line is
# written in two halves with a pause between, so the ingester sees partial lines.
WRITER = """
import json, sys, time
from sprout.logs.record import LogRecord, format_line
inst, router, count, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
with open(inst, "a") as fi, open(router, "a") as fr:
    for i in range(count):
        now = time.time()
        line = format_line(LogRecord(now, "stdout", "i-w", "shop", "prod", "v1", "a", f"line {i}"))
        fi.write(line[:25]); fi.flush()
        time.sleep(gap / 2)
        fi.write(line[25:]); fi.flush()
        fr.write(json.dumps({"time": now, "request_id": f"r-{i}", "host": "shop.localhost", "method": "GET",
                             "path": f"/p/{i}", "status": 200, "bytes": 2, "duration": 0.001,
                             "target": "127.0.0.1:1", "version": "v1", "zone": "a", "retries": 0}) + "\\n")
        fr.flush()
        time.sleep(gap / 2)
"""

# A stand-in for the daemon: runs a LogIngester until it is killed.
DAEMON = """
import sys, time
from pathlib import Path
from sprout.logs.ingest import LogIngester
from sprout.logs.store import LogStore
db, inst, router = map(Path, sys.argv[1:4])
ingester = LogIngester(LogStore(db), lambda: [(inst, "instance"), (router, "router")], interval=0.01)
ingester.start()
print("ready", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def spawn(procs: list[subprocess.Popen[str]], script: str, *args: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
    )
    procs.append(proc)
    return proc


def test_lines_from_a_live_writer_are_queryable_within_2s(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    inst, router = tmp_path / "i-w.log", tmp_path / "access.log"
    store = LogStore(tmp_path / "logs.db")
    ingester = LogIngester(store, lambda: [(inst, "instance"), (router, "router")], interval=0.5)
    ingester.start()
    count = 30
    writer = spawn(procs, WRITER, inst, router, count, 0.05)
    seen_at: dict[str, float] = {}
    rows: list[LogRow] = []
    last = 0
    deadline = time.monotonic() + 30
    try:
        while len(rows) < 2 * count and time.monotonic() < deadline:
            fresh = store.query(after_id=last, limit=10_000)
            now = time.time()
            for row in fresh:
                seen_at[row.msg] = now - row.ts
            rows += fresh
            last = fresh[-1].id if fresh else last
            time.sleep(0.01)
        assert writer.wait(30) == 0
    finally:
        ingester.stop()
        store.close()
    instance_lines = [r.msg for r in rows if r.source == "instance"]
    assert instance_lines == [f"line {i}" for i in range(count)]
    assert sum(r.source == "router" for r in rows) == count
    latencies = sorted(seen_at.values())
    print(
        f"\nlog visibility latency over {len(latencies)} lines: "
        f"median {latencies[len(latencies) // 2]:.3f}s, max {latencies[-1]:.3f}s (ingest interval 0.5s)"
    )
    assert latencies[-1] < 2.0, f"a line took {latencies[-1]:.3f}s to become queryable"


def test_killing_the_ingesting_process_neither_loses_nor_duplicates(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    db, inst, router = tmp_path / "logs.db", tmp_path / "i-w.log", tmp_path / "access.log"
    count = 150
    writer = spawn(procs, WRITER, inst, router, count, 0.01)
    kills = 0
    while writer.poll() is None:
        daemon = spawn(procs, DAEMON, db, inst, router)
        assert daemon.stdout is not None
        assert daemon.stdout.readline() == "ready\n"
        time.sleep(0.15)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        kills += 1
    assert writer.returncode == 0
    assert kills >= 2, "the ingester was killed mid-stream at least twice"
    store = LogStore(db)
    try:
        LogIngester(store, lambda: [(inst, "instance"), (router, "router")]).ingest_once()
        rows = store.query(limit=100_000)
    finally:
        store.close()
    instance_lines = sorted((r.msg for r in rows if r.source == "instance"), key=lambda m: int(m.split()[1]))
    router_paths = [r.msg.split()[1] for r in rows if r.source == "router"]
    assert instance_lines == [f"line {i}" for i in range(count)]
    assert sorted(router_paths) == sorted(f"shop.localhost/p/{i}" for i in range(count))
    print(f"\n{kills} kill -9 of the ingesting process; {len(rows)} lines stored, exactly once each")


def test_stop_runs_a_final_pass_and_a_bad_file_does_not_stall_the_rest(tmp_path: Path) -> None:
    good, folder = tmp_path / "good.log", tmp_path / "a-folder.log"
    folder.mkdir()
    store = LogStore(tmp_path / "logs.db")
    ingester = LogIngester(store, lambda: [(folder, "instance"), (good, "instance")], interval=60)
    ingester.start()
    good.write_text("written just before stop\n")
    ingester.stop()
    try:
        assert [r.msg for r in store.query()] == ["written just before stop"]
    finally:
        store.close()

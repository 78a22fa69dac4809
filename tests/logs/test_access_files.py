"""The router's access files: sampling keeps every error and slow request, rotation, gzip, retention, and
`sprout logs --grep` finding a successful request in a real running stack within 2 s."""

from __future__ import annotations

import gzip
import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from sprout.accessfiles import CURRENT, AccessFiles, parse_line
from sprout.logs.store import LogStore
from sprout.router.accesslog import AccessLog, Row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_kit import Sprout, kill_all, make_app, processes_of

from loopback import free_port


def _row(n: int, status: int, duration: float) -> Row:
    return (time.time(), b"rid-%d" % n, b"shop.localhost", b"GET", b"/item/%d" % n, status, 10, duration,
            b"t1\tv1\ta", 0, b"shop-production")  # fmt: skip


def test_sampling_keeps_every_error_and_slow_request_and_files_rotate_compress_and_retain(
    tmp_path: Path,
) -> None:
    notable = tmp_path / "router-access.log"
    log = AccessLog(notable, sample=0.25, slow=1.0, rotate_bytes=4000)
    kinds = {}
    for n in range(2000):
        status, duration = (502, 0.01) if n % 10 == 0 else (200, 2.5) if n % 25 == 1 else (200, 0.01)
        kinds[n] = "error" if status == 502 else "slow" if duration > 1 else "ok"
        log.record(_row(n, status, duration))
        if n % 100 == 99:
            log.flush()
    log.close()

    kept = notable.read_text().splitlines()
    assert len(kept) == sum(1 for k in kinds.values() if k != "ok")  # every error and slow request
    files = AccessFiles(tmp_path / "access")
    rotated = [p for p in files.files() if p.name != CURRENT]
    assert len(rotated) >= 3 and all(p.stat().st_size <= 4000 + 100 * 80 for p in rotated)

    done = files.maintain(keep_bytes=10**9, keep_days=14)
    assert done.compressed == len(rotated) and done.deleted == 0
    lines = []
    for path in files.files():
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        lines += [parse_line(text) for text in data.decode().splitlines()]
    ids = [int(line.request_id.split("-")[1]) for line in lines if line is not None]
    assert len(ids) == len(lines) and all(kinds[n] == "ok" for n in ids)
    oks = sum(1 for k in kinds.values() if k == "ok")
    assert 0.15 * oks < len(ids) < 0.35 * oks  # sampled at 25 %

    # A line in a compressed file is found, and no query returns more than asked.
    oldest = ids[0]
    found = files.search(grep=f"/ITEM/{oldest}\t", since=None, version=None, limit=10).lines
    assert [line.request_id for line in found] == [f"rid-{oldest}"]
    assert len(files.search(grep=None, since=None, version=None, limit=7).lines) == 7

    # Retention by size drops the oldest files first and never the current one; by age, every old one.
    current = tmp_path / "access" / CURRENT
    before = files.files()
    budget = current.stat().st_size + (files.disk_bytes() - current.stat().st_size) // 2
    assert files.maintain(keep_bytes=budget, keep_days=14).deleted > 0
    after = files.files()
    assert files.disk_bytes() <= budget and after == before[len(before) - len(after) :] and current.exists()
    for path in files.files():
        os.utime(path, (time.time() - 20 * 86400,) * 2)
    files.maintain(keep_bytes=10**9, keep_days=14)
    assert [p.name for p in files.files()] == [CURRENT]


@pytest.mark.slow
def test_sprout_logs_grep_finds_a_successful_request_within_2s_and_names_what_a_short_search_left_unread(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, "[scaling]\nenabled = false\n")
    # Access files rotated at ~5 KiB (~40 lines): a few bursts of requests make several files.
    sprout = Sprout(home=tmp_path / "home", app_dir=app, port=free_port(),
                    extra_env={"SPROUT_ACCESS_ROTATE_MB": "0.005"})  # fmt: skip
    try:
        sprout.up()
        probe = f"probe-{os.getpid()}-{time.time_ns()}"
        response = httpx.get(f"http://127.0.0.1:{sprout.port}/", headers={"Host": "hello.localhost",
                             "X-Request-Id": probe}, timeout=5, trust_env=False)  # fmt: skip
        assert response.status_code == 200
        sent = time.monotonic()
        while True:
            out = sprout.run("logs", str(app), "--grep", probe).stdout
            if probe in out:
                break
            assert time.monotonic() - sent < 2.0, "a successful request not found by --grep within 2 s"
            time.sleep(0.1)
        assert "GET hello.localhost/ 200" in out and "route=hello-production" in out
        # Its line is in the access files, not a row of the log store.
        store = LogStore(sprout.home / "logs.db")
        try:
            assert store.query(grep=probe) == []
        finally:
            store.close()

        # Newer traffic pushes the probe's line into older files (the router rotates at its flush, once a
        # second); a search given no time reads only the newest file and says what it left unread.
        files = AccessFiles(sprout.home / "logs" / "access")
        for _ in range(4):
            with httpx.Client(trust_env=False, timeout=5) as client:
                for _ in range(60):
                    client.get(f"http://127.0.0.1:{sprout.port}/", headers={"Host": "hello.localhost"})
            time.sleep(1.2)
        assert len(files.files()) >= 4, files.files()
        short = sprout.run("logs", str(app), "--grep", probe, "--search-seconds", "0")
        assert probe not in short.stdout
        unread = len(files.files()) - 1
        assert "were not read" in short.stderr and "--search-seconds" in short.stderr, short.stderr
        assert f"{unread} older file(s)" in short.stderr or f"{unread - 1} older file(s)" in short.stderr
        full = sprout.run("logs", str(app), "--grep", probe)
        assert probe in full.stdout and "were not read" not in full.stderr
        bad = sprout.run("logs", str(app), "--grep", probe, "--search-seconds", "600", check=False)
        assert (
            bad.returncode == 2
            and "--search-seconds" in bad.stderr
            and "less than or equal to 60" in bad.stderr
        )
        api = httpx.get(sprout.daemon()["api_url"] + "/v1/logs", params={"grep": probe, "search_seconds": "nan"},
                        headers={"Authorization": f"Bearer {sprout.token()}"}, trust_env=False)  # fmt: skip
        assert api.status_code == 400 and "search_seconds='nan': give seconds from 0 to 60" in api.text
    finally:
        if sprout.home.exists():
            sprout.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(sprout.home))

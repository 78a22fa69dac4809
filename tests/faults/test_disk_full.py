"""A full disk under SPROUT_HOME degrades Sprout and never breaks it.

SPROUT_HOME is a small tmpfs that is filled while the hello app serves: requests keep succeeding (the
agents drop and count their app's output, the router drops its access-log rows), the router's timers
still answer a never-finished request head with 408, `sprout status` says "disk full since …" and a
command that must write prints one line. Once the space is freed, requests keep succeeding, they are
queryable in `sprout logs`, and the state store is intact.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fault_kit import Sprout, fill, kill_all, make_app, processes_of, tmpfs, wait_for

from loopback import free_port
from sprout.accessfiles import parse_line as parse_access_line
from sprout.agent.logfile import InstanceLog
from sprout.agent.spec import AgentSpec
from sprout.agent.supervise import Supervisor
from sprout.router.accesslog import AccessLog, Row
from sprout.router.config import RouterConfig
from sprout.state import StateStore

HOME_SIZE = "48m"
#: The daemon's router runs with the default header timeout; its sweep runs every 0.5 s.
HEADER_TIMEOUT = RouterConfig().header_timeout
SWEEP_MARGIN = 1.0
REQUESTS = 60


# Full-disk runs mount tmpfs homes and time recovery: one at a time on the suite's workers.
pytestmark = pytest.mark.xdist_group("serial")


@pytest.fixture
def sprout(tmp_path: Path, shared_bundle_cache: Path) -> Iterator[Sprout]:
    app = make_app(tmp_path, "[scaling]\nenabled = false\n")
    with tmpfs(tmp_path / "home", HOME_SIZE) as home:
        instance = Sprout(home=home, app_dir=app, port=free_port())
        try:
            yield instance
        finally:
            for ballast in home.glob("ballast*"):
                ballast.unlink()
            instance.run("down", str(app), check=False, timeout=90)
            kill_all(processes_of(home))


def requests(sprout: Sprout, count: int) -> tuple[list[str], list[str]]:
    """`count` GETs through the router: (request ids of the 200s, descriptions of the failures)."""
    ok: list[str] = []
    failed: list[str] = []
    with httpx.Client(timeout=5, trust_env=False, headers={"Host": "hello.localhost"}) as client:
        for _ in range(count):
            try:
                response = client.get(f"http://127.0.0.1:{sprout.port}/")
            except httpx.HTTPError as exc:
                failed.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code == 200:
                ok.append(response.headers["x-request-id"])
            else:
                failed.append(f"HTTP {response.status_code}: {response.text[:100]}")
    return ok, failed


def unfinished_head_answer(port: int) -> tuple[bytes, float]:
    """Send half a request head and wait: what the router answers, and after how many seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT + SWEEP_MARGIN + 5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n")
        sent = time.monotonic()
        answer = sock.recv(4096)
        return answer, time.monotonic() - sent


def events(sprout: Sprout) -> list[dict[str, object]]:
    """The daemon's events, as its API gives them."""
    response = httpx.get(
        f"{sprout.daemon()['api_url']}/v1/events",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {sprout.token()}"},
        timeout=5,
        trust_env=False,
    )
    response.raise_for_status()
    found: list[dict[str, object]] = response.json()["events"]
    return found


@pytest.mark.slow
def test_a_full_disk_degrades_serving_never_breaks_it_and_everything_resumes_when_freed(
    sprout: Sprout,
) -> None:
    sprout.up()
    sprout.wait_converged(60)
    ballast = fill(sprout.home)

    during_ok, during_failed = requests(sprout, REQUESTS)
    assert during_failed == [], during_failed
    answer, waited = unfinished_head_answer(sprout.port)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert waited <= HEADER_TIMEOUT + SWEEP_MARGIN
    assert wait_for(
        "status saying the disk is full", lambda: sprout.status()["daemon"]["disk"]["full_since"], 10
    )
    assert "disk full since " in sprout.run("status").stdout
    (sprout.app_dir / "new_file.txt").write_text("x" * 100_000)
    push = sprout.run("push", str(sprout.app_dir), check=False)
    assert push.returncode == 4, push
    assert "Traceback" not in push.stderr and len(push.stderr.strip().splitlines()) == 1, push.stderr
    assert push.stderr.startswith(f"error: disk full under {sprout.home} ("), push.stderr

    ballast.unlink()
    freed = time.monotonic()
    after_ok, after_failed = requests(sprout, REQUESTS)
    assert after_failed == [], after_failed

    def all_queryable() -> bool:
        shown = sprout.run("logs", "--router", "--since", "5m", "-n", "5000").stdout
        return all(f"request_id={rid}" in shown for rid in after_ok)

    wait_for(
        "the requests made after freeing queryable in `sprout logs --router`", all_queryable, 20, every=0.5
    )
    queryable = time.monotonic() - freed

    def dropped_note() -> str:
        return sprout.run(
            "logs", str(sprout.app_dir), "--grep", "lines of output dropped", "--since", "5m"
        ).stdout

    # The instances write their note with their next line after the disk is freed; it is ingested after.
    wait_for(
        "the instances' note of the lines they dropped",
        lambda: "dropped since" in dropped_note(),
        30,
        every=0.5,
    )
    dropped = dropped_note()
    assert "lines of output dropped since" in dropped and "No space left on device" in dropped, dropped
    app_lines = sprout.run("logs", str(sprout.app_dir), "--grep", "GET / 200", "--since", "5m", "-n", "5000")
    assert app_lines.stdout.count("GET / 200") >= len(after_ok)

    def disk_events() -> list[str] | None:
        kinds = [e["kind"] for e in events(sprout)]
        return kinds if "disk.ok" in kinds else None

    kinds = wait_for("disk.full then disk.ok in the events", disk_events, 10)
    assert kinds.index("disk.full") < kinds.index("disk.ok")
    assert sprout.status()["daemon"]["disk"]["full_since"] is None
    conn = sqlite3.connect(sprout.home / "state.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    # Full again, and the daemon killed: it cannot restart (its state store cannot open), one line says
    # so, serving goes on without it, and it starts once there is room.
    ballast = fill(sprout.home)
    os.kill(int(sprout.daemon()["pid"]), signal.SIGKILL)
    restart = sprout.run("daemon", "start", check=False)
    assert restart.returncode == 4, restart
    assert "Traceback" not in restart.stderr and len(restart.stderr.strip().splitlines()) == 1, restart.stderr
    assert restart.stderr.startswith(f"error: daemon: cannot start: disk full under {sprout.home} ("), restart
    still_ok, still_failed = requests(sprout, 20)
    assert still_failed == [] and len(still_ok) == 20
    ballast.unlink()
    sprout.run("daemon", "start")
    print(
        f"disk full: {len(during_ok)}/{REQUESTS} requests ok, 408 after {waited:.1f}s "
        f"(header timeout {HEADER_TIMEOUT:g}s); freed: {len(after_ok)}/{REQUESTS} ok, "
        f"all queryable {queryable:.1f}s after freeing"
    )


def test_the_state_store_never_corrupts_on_a_full_disk_and_writes_again_once_freed(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "home", "2m") as home:
        store = StateStore(home / "state.db")
        ballast = fill(home)
        written: list[int] = []
        refused = 0
        try:
            # Whatever space SQLite still finds in its pages is used; then every write is refused whole.
            for i in range(2000):
                try:
                    written.append(store.record_event(None, None, "fill", f"event {i} " + "x" * 2000).id)
                except sqlite3.OperationalError as exc:
                    assert str(exc) == "database or disk is full"
                    refused += 1
                    if refused >= 20:
                        break
            assert refused >= 20, "the disk never refused a write"
        finally:
            ballast.unlink()
        after = store.record_event(None, None, "after", "written once space is back")
        store.close()
        conn = sqlite3.connect(home / "state.db")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            ids = [row[0] for row in conn.execute("SELECT id FROM events WHERE kind = 'fill' ORDER BY id")]
        finally:
            conn.close()
        assert ids == written
        reopened = StateStore(home / "state.db")
        assert [e.message for e in reopened.list_events(kind="after")] == [after.message]
        reopened.close()


def test_the_agent_keeps_reading_its_app_while_the_log_cannot_be_written_and_says_how_much_it_dropped(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "home", "1m") as home:
        fields = {
            "instance_id": "i-full",
            "app": "hello",
            "env": "production",
            "version": "v1",
            "bundle_sha256": "0" * 64,
            "store_url": str(tmp_path),
            "zone": "a",
            "host": "127.0.0.1",
            "port": 8000,
            "web": "unused",
            "health_path": "/healthz",
            "log_file": str(home / "app.log"),
            "cache_dir": str(tmp_path),
        }
        log = InstanceLog(AgentSpec(fields, "test"))
        log.start_writing()
        log.emit("system", "before the disk filled")
        ballast = fill(home)
        try:
            # The app writes far more than a pipe holds: a pump that stopped reading would block it,
            # one that closed the pipe would break it (exit 120: Python's flush of stdout failed).
            app = Supervisor(
                f"{sys.executable} -c \"import sys\nfor i in range(3000): print('line', i, flush=True)\"",
                cwd=str(tmp_path),
                env=os.environ,
                grace=1.0,
                emit=log.emit,
            )
            assert app.run() == 0
            assert log.dropped >= 2900
        finally:
            ballast.unlink()
        log.emit("system", "after the disk was freed")
        log.close()
        lines = []
        for text in (home / "app.log").read_text().splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                # The line cut off when the disk filled: it stands alone (counted as dropped).
                continue
    messages = [line["msg"] for line in lines]
    assert messages[0] == "before the disk filled" and messages[-1] == "after the disk was freed"
    note = re.fullmatch(
        r"(\d+) lines of output dropped since \d\d:\d\d:\d\d UTC: the log could not be written "
        r"\(No space left on device\)",
        messages[-2],
    )
    assert note is not None, messages[-2]
    written = len(lines) - 3
    # Every line the app printed and the agent's two (web started, web exited) was written or counted.
    assert written + int(note.group(1)) == 3000 + 2
    assert sum(1 for line in lines if line["stream"] == "stdout") == written - sum(
        1 for m in messages[1:-2] if m.startswith("web ")
    )


def test_the_router_access_log_drops_and_counts_rows_while_full_and_resumes_when_freed(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "home", "1m") as home:
        access = AccessLog(home / "router-access.log")

        def row(n: int) -> Row:
            return (
                time.time(),
                b"rid-%d" % n,
                b"hello.localhost",
                b"GET",
                b"/",
                200,
                2,
                0.001,
                b"t\tv1\ta",
                0,
                b"hello",
            )

        access.record(row(0))
        access.flush()
        ballast = fill(home)
        try:
            for n in range(1, 2001):
                access.record(row(n))
                if n % 100 == 0:
                    access.flush()
            assert access.dropped > 1500
        finally:
            ballast.unlink()
        access.record(row(2001))
        access.close()
        ids = []
        for text in (home / "access" / "current.log").read_text().splitlines():
            line = parse_access_line(text)
            if line is not None:
                ids.append(line.request_id)
    assert ids[0] == "rid-0" and ids[-1] == "rid-2001"
    assert len(ids) - 2 + access.dropped == 2000

"""The HAProxy engine's shipper: which lines are notable, their JSON form, and a real shipper process fed
over its unix socket as HAProxy's ring forwards lines (a second connection, as from a restarted HAProxy,
included), stopped by SIGTERM after the lines sent before it are shipped."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sprout.accessfiles import AccessFiles, parse_line
from sprout.router.haproxy.shipper import split, to_json


def line(status: str = "200", ms: str = "3", path: str = "/a", route: str = "shop-production") -> bytes:
    """A line as HAProxy's log-format writes it."""
    return (
        f"1796514304.613\t{route}\tGET\tshop.localhost{path}\t{status}\t512\t{ms}e-3\ti-1\tv3\t-\t0\t6B14A2\n"
    ).encode()


def test_split_takes_out_errors_no_response_and_slow_lines_only() -> None:
    ordinary = [line(), line("302"), line(ms="999"), line(path="/404/500?x=\t"[:-1]), line(route="-")]
    notable = [line("404"), line("503"), line("-1"), line(ms="1000"), line("200", "12345")]
    batch = b"".join([ordinary[0], notable[0], notable[1], *ordinary[1:3], notable[2], ordinary[3]])
    batch += b"".join([notable[3], ordinary[4], notable[4]])
    ok, count, found = split(batch)
    assert ok == b"".join(ordinary) and count == len(ordinary)
    assert found == [n.rstrip(b"\n") for n in notable]
    assert split(b"".join(ordinary)) == (b"".join(ordinary), len(ordinary), [])


def test_notable_json_has_the_routers_keys_and_blank_fields_empty() -> None:
    row = json.loads(to_json(line("502", "1500", route="-").rstrip(b"\n")))
    assert row["host"] == "shop.localhost" and row["path"] == "/a"
    assert (row["status"], row["duration"], row["route"], row["zone"], row["version"]) == (
        502,
        1.5,
        "",
        "",
        "v3",
    )
    assert row["request_id"] == "6B14A2" and row["time"].endswith("Z")
    assert to_json(b"[WARNING] not an access line") == "[WARNING] not an access line"
    parsed = parse_line(line(ms="12").decode().rstrip("\n"))
    assert parsed is not None and parsed.duration == 0.012 and parsed.zone == ""


def test_shipper_process_ships_what_haproxy_sends_and_drains_on_sigterm(tmp_path: Path) -> None:
    address = tmp_path / "access.sock"
    notable_log = tmp_path / "router-access.log"
    shipper = subprocess.Popen(
        [sys.executable, "-m", "sprout.router.haproxy.shipper", "--socket", str(address),
         "--notable-log", str(notable_log), "--rotate-bytes", "2000"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not address.exists():
            assert time.monotonic() < deadline, "the shipper never listened"
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX) as first:
            first.connect(str(address))
            first.sendall(line(path="/early") + line("500", path="/early-error"))
            for i in range(100):
                first.sendall(line(path=f"/ok-{i}"))
            # A line cut in two sends arrives whole.
            half = line(path="/cut")
            first.sendall(half[:20])
            time.sleep(0.3)
            first.sendall(half[20:])
        # A restarted HAProxy connects again.
        with socket.socket(socket.AF_UNIX) as second:
            second.connect(str(address))
            for i in range(20):
                second.sendall(line(path=f"/late-{i}"))
            time.sleep(0.3)
            shipper.send_signal(signal.SIGTERM)
            assert shipper.wait(10) == 0
    finally:
        if shipper.poll() is None:
            shipper.kill()
            shipper.wait()
    access = AccessFiles(tmp_path / "access")
    found = access.search(grep="shop.localhost/", since=None, version=None, limit=1000).lines
    assert sorted(f.host_path for f in found) == sorted(
        ["shop.localhost/early", "shop.localhost/cut", *(f"shop.localhost/ok-{i}" for i in range(100)),
         *(f"shop.localhost/late-{i}" for i in range(20))]
    )  # fmt: skip
    assert len(access.files()) >= 2  # rotated at 2000 bytes
    notable = [json.loads(text) for text in notable_log.read_text().splitlines()]
    assert [(n["path"], n["status"]) for n in notable] == [("/early-error", 500)]

"""The log store: queries over real files, FTS grep, and exactly-once ingestion across restarts and crashes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loglines import append, record, router_line

from sprout.errors import UserError
from sprout.logs.record import format_line
from sprout.logs.store import SEARCH_FTS, LogRow, LogStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path / "logs.db")
    yield s
    s.close()


def msgs(rows: list[LogRow]) -> list[str]:
    return [r.msg for r in rows]


def test_lines_from_several_files_are_queryable(store: LogStore, tmp_path: Path) -> None:
    a, b, r = tmp_path / "i-aaa.log", tmp_path / "i-bbb.log", tmp_path / "access.log"
    append(a, record("a1", ts=1.0), record("a2", ts=3.0))
    append(b, record("b1", ts=2.0, instance="i-bbb", version="v2", zone="b"))
    r.write_text(router_line(4.0, "/healthz"))
    assert store.ingest_file(a, "instance") == 2
    assert store.ingest_file(b, "instance") == 1
    assert store.ingest_file(r, "router") == 1
    rows = store.query()
    assert msgs(rows) == [
        "a1",
        "b1",
        "a2",
        "GET shop.localhost/healthz 200 bytes=12 duration=0.004 target=127.0.0.1:40001 request_id=r-1 retries=0",
    ]
    assert [(r.source, r.stream, r.instance, r.version, r.zone) for r in rows] == [
        ("instance", "stdout", "i-aaa", "v1", "a"),
        ("instance", "stdout", "i-bbb", "v2", "b"),
        ("instance", "stdout", "i-aaa", "v1", "a"),
        ("router", "access", "", "v1", "b"),
    ]
    assert store.ingest_file(a, "instance") == 0, "nothing new, nothing added"


def test_filters(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    append(
        log,
        record("old", ts=100.0),
        record("v2 line", ts=200.0, version="v2"),
        record("other instance", ts=300.0, instance="i-bbb"),
        record("staging", ts=400.0, env="staging"),
        record("other app", ts=500.0, app="lottery"),
    )
    store.ingest_file(log, "instance")
    assert msgs(store.query(since=200.0)) == ["v2 line", "other instance", "staging", "other app"]
    assert msgs(store.query(since=200.0, until=400.0)) == ["v2 line", "other instance"]
    assert msgs(store.query(instance="i-bbb")) == ["other instance"]
    assert msgs(store.query(version="v2")) == ["v2 line"]
    assert msgs(store.query(env="staging")) == ["staging"]
    assert msgs(store.query(app="lottery")) == ["other app"]
    assert msgs(store.query(source="router")) == []
    assert msgs(store.query(since=150.0, instance="i-aaa", app="shop", env="prod")) == ["v2 line"]


def test_grep_uses_full_text_search_as_a_case_insensitive_substring(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(
        log,
        record("GET /cart 200 in 3ms", ts=1.0),
        record("Traceback: ZeroDivisionError: division by zero", ts=2.0),
        record('payment "declined" for order 17', ts=3.0),
        record("100% done_ok", ts=4.0),
        record("ok", ts=5.0),
    )
    store.ingest_file(log, "instance")
    assert store.search_mode == SEARCH_FTS
    assert msgs(store.query(grep="zerodivision")) == ["Traceback: ZeroDivisionError: division by zero"]
    assert msgs(store.query(grep="ivisio")) == ["Traceback: ZeroDivisionError: division by zero"]
    assert msgs(store.query(grep='"declined" for')) == ['payment "declined" for order 17']
    assert msgs(store.query(grep="/cart 200")) == ["GET /cart 200 in 3ms"]
    assert msgs(store.query(grep="AND OR NOT")) == [], "FTS operators are plain text"
    # Under three characters the trigram index cannot help; LIKE answers, with % and _ taken literally.
    assert msgs(store.query(grep="ok")) == ["100% done_ok", "ok"]
    assert msgs(store.query(grep="%")) == ["100% done_ok"]
    assert msgs(store.query(grep="_")) == ["100% done_ok"]
    assert msgs(store.query(grep="zero", since=2.0, until=3.0)) == [
        "Traceback: ZeroDivisionError: division by zero"
    ]


def test_limit_returns_the_newest_in_time_order_and_after_id_pages_forward(
    store: LogStore, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    append(log, *(record(f"line {i}", ts=float(i)) for i in range(10)))
    store.ingest_file(log, "instance")
    tail = store.query(limit=3)
    assert msgs(tail) == ["line 7", "line 8", "line 9"]
    first = store.query(after_id=0, limit=4)
    assert msgs(first) == ["line 0", "line 1", "line 2", "line 3"]
    assert msgs(store.query(after_id=first[-1].id, limit=2)) == ["line 4", "line 5"]
    assert store.last_id() == tail[-1].id


def test_partial_last_line_waits_for_its_newline(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    whole = format_line(record("late"))
    append(log, record("done"), raw=whole[:20])
    assert store.ingest_file(log, "instance") == 1
    assert store.ingest_file(log, "instance") == 0
    with open(log, "a") as f:
        f.write(whole[20:])
    assert store.ingest_file(log, "instance") == 1
    assert msgs(store.query()) == ["done", "late"]


def test_restart_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    db, log = tmp_path / "logs.db", tmp_path / "app.log"
    append(log, *(record(f"first {i}", ts=float(i)) for i in range(100)))
    first = LogStore(db)
    assert first.ingest_file(log, "instance") == 100
    first.close()
    append(log, *(record(f"second {i}", ts=100.0 + i) for i in range(50)), raw='{"ts": 500.0, "str')
    second = LogStore(db)
    assert second.ingest_file(log, "instance") == 50
    assert second.ingest_file(log, "instance") == 0
    second.close()
    with open(log, "a") as f:
        f.write(
            'eam": "stdout", "instance": "i-aaa", "app": "shop", "env": "prod", "version": "v1", '
            '"zone": "a", "msg": "joined"}\n'
        )
    third = LogStore(db)
    assert third.ingest_file(log, "instance") == 1
    rows = third.query(limit=10_000)
    third.close()
    assert len(rows) == 151
    assert len({r.msg for r in rows}) == 151
    assert rows[-1].msg == "joined"


CRASH_SCRIPT = """
import os, sys
from pathlib import Path
from sprout.logs.store import LogStore

def crash(self, *args, **kwargs):
    os._exit(9)  # dies after inserting rows, before the offset is saved and the transaction commits

if sys.argv[3] == "mid-transaction":
    LogStore._save_offset = crash
store = LogStore(Path(sys.argv[1]))
print(store.ingest_file(Path(sys.argv[2]), "instance"), flush=True)
os._exit(9)  # no close, no clean shutdown
"""


def run_crashing_ingest(db: Path, log: Path, mode: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(db), str(log), mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 9, proc.stderr
    return proc


def test_crash_mid_transaction_then_restart_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    db, log = tmp_path / "logs.db", tmp_path / "app.log"
    append(log, *(record(f"a{i}") for i in range(40)))
    assert run_crashing_ingest(db, log, "after-commit").stdout == "40\n"
    append(log, *(record(f"b{i}") for i in range(25)), raw='{"ts": 1.0, "partial')
    assert run_crashing_ingest(db, log, "mid-transaction").stdout == ""
    reopened = LogStore(db)
    assert len(reopened.query(limit=10_000)) == 40, "the crashed transaction left nothing behind"
    assert reopened.ingest_file(log, "instance") == 25
    rows = reopened.query(limit=10_000)
    reopened.close()
    assert sorted(msgs(rows)) == sorted([f"a{i}" for i in range(40)] + [f"b{i}" for i in range(25)])


def test_truncated_file_is_read_again_from_the_start(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, *(record(f"before {i}") for i in range(10)))
    assert store.ingest_file(log, "instance") == 10
    log.write_text("")
    append(log, *(record(f"after {i}") for i in range(3)))
    assert store.ingest_file(log, "instance") == 3
    assert len(store.query()) == 13


def test_truncated_and_refilled_past_the_offset_is_noticed(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, *(record(f"before {i}", ts=1.0) for i in range(3)))
    assert store.ingest_file(log, "instance") == 3
    with open(log, "w") as f:  # same inode, same path: a copytruncate rotation
        f.writelines(format_line(record(f"after {i}", ts=2.0)) for i in range(20))
    assert store.ingest_file(log, "instance") == 20
    assert len(store.query()) == 23


def test_rotated_file_is_read_from_the_start(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, *(record(f"old {i}") for i in range(5)))
    assert store.ingest_file(log, "instance") == 5
    os.rename(log, tmp_path / "app.log.1")
    append(log, *(record(f"new {i}") for i in range(8)))
    assert store.ingest_file(log, "instance") == 8
    assert len(store.query()) == 13


def test_missing_file_and_unknown_source(store: LogStore, tmp_path: Path) -> None:
    assert store.ingest_file(tmp_path / "absent.log", "instance") == 0
    with pytest.raises(UserError) as err:
        store.ingest_file(tmp_path / "x.log", "kernel")
    assert (
        str(err.value)
        == f"log file {tmp_path / 'x.log'}: unknown source 'kernel'; use one of instance, router"
    )


def test_non_utf8_and_blank_lines(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"\n   \nbad \xff bytes\n")
    assert store.ingest_file(log, "instance") == 1
    assert msgs(store.query()) == ["bad \ufffd bytes"]

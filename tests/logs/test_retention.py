"""Log retention: old lines leave the table and the full-text index; offsets stay, nothing is re-ingested."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from loglines import append, record

from sprout.logs.store import SEARCH_FTS, LogStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path / "logs.db")
    yield s
    s.close()


def offsets(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM log_offsets ORDER BY path").fetchall()


def fts_rowids(db: Path, phrase: str) -> list[int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rowid FROM log_fts WHERE log_fts MATCH ?", (f'"{phrase}"',))
        return [r[0] for r in rows]


def test_old_lines_are_pruned_and_no_longer_found_recent_ones_kept(store: LogStore, tmp_path: Path) -> None:
    assert store.search_mode == SEARCH_FTS
    log = tmp_path / "app.log"
    append(log, record("checkout failed old", ts=100.0), record("checkout failed new", ts=300.0))
    assert store.ingest_file(log, "instance") == 2
    before = offsets(store.db_path)

    assert store.prune_before(200.0) == 1

    assert [r.msg for r in store.query()] == ["checkout failed new"]
    assert [r.msg for r in store.query(grep="checkout failed")] == ["checkout failed new"]
    assert [r.msg for r in store.query(grep="ou")] == ["checkout failed new"], "the LIKE path too"
    # The index itself forgot the line, not only the join with the table.
    assert len(fts_rowids(store.db_path, "failed old")) == 0
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("INSERT INTO log_fts (log_fts) VALUES ('integrity-check')")
    assert offsets(store.db_path) == before
    assert store.ingest_file(log, "instance") == 0, "a pruned line is never ingested again"
    append(log, record("later", ts=400.0))
    assert store.ingest_file(log, "instance") == 1
    assert [r.msg for r in store.query()] == ["checkout failed new", "later"]


def test_prune_is_per_app_and_env_when_asked(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(
        log,
        record("prod old", ts=100.0),
        record("staging old", ts=100.0, env="staging"),
        record("other app old", ts=100.0, app="blog"),
    )
    store.ingest_file(log, "instance")
    assert store.prune_before(200.0, app="shop", env="prod") == 1
    assert sorted(r.msg for r in store.query()) == ["other app old", "staging old"]
    assert store.prune_before(200.0, app="shop", env="prod") == 0, "nothing left to do"


def test_prune_runs_in_batches_until_done(store: LogStore, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, *(record(f"line {n}", ts=float(n)) for n in range(10)))
    store.ingest_file(log, "instance")
    assert store.prune_before(7.5, batch=3) == 8
    assert [r.msg for r in store.query()] == ["line 8", "line 9"]

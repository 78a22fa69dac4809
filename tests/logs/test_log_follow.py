"""`sprout logs -f`: every line stored after the command starts is printed once, whatever the moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loglines import append, record, router_line

from pipe_lines import PipeLines
from sprout.cli.logs_cmd import _newer
from sprout.controlplane.logquery import query_logs
from sprout.logs.store import LogStore
from sprout.paths import Home


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path / "logs.db")
    yield s
    s.close()


def _queries(grep: str) -> list[dict[str, Any]]:
    """The two queries `logs --grep` follows: the app's lines, and the router's line of the request."""
    return [{"grep": grep, "source": "instance"}, {"grep": grep, "source": "router"}]


def _fetch(store: LogStore) -> Any:
    return lambda query: query_logs(store, {k: str(v) for k, v in query.items() if v is not None})


def test_a_line_stored_between_the_two_queries_of_one_poll_is_followed(
    store: LogStore, tmp_path: Path
) -> None:
    """The app's line is stored after the app query ran and before the router query ran, then the router's
    line: a cursor shared by both queries jumped over the app's line (CI run 1 of 2026-12-06)."""
    app_log, access_log = tmp_path / "app.log", tmp_path / "access.log"
    queries = _queries("/probe")
    fetch = _fetch(store)
    cursors = [fetch(q)["last_id"] for q in queries]

    def ingest_after_the_app_query(query: dict[str, Any]) -> dict[str, Any]:
        page = fetch(query)
        if query["source"] == "instance":
            append(app_log, record("GET /probe 404", ts=5.0))
            store.ingest_file(app_log, "instance")
            access_log.write_text(router_line(5.0, "/probe", status=404))
            store.ingest_file(access_log, "router")
        return page

    first, cursors = _newer(ingest_after_the_app_query, queries, cursors)
    assert [line["source"] for line in first] == ["router"]
    second, cursors = _newer(fetch, queries, cursors)
    assert [line["msg"] for line in second] == ["GET /probe 404"]
    assert _newer(fetch, queries, cursors)[0] == [], "nothing is printed twice"


class _IngestDuringQuery(LogStore):
    """A store whose first query lets another thread try to store a line before the query returns."""

    line_file: Path
    writer: threading.Thread | None = None

    def query(self, **filters: Any) -> Any:
        rows = super().query(**filters)
        if self.writer is None:
            self.writer = threading.Thread(target=self.ingest_file, args=(self.line_file, "instance"))
            self.writer.start()
            # Time for the writer to store its line, unless the page's reads hold it off.
            self.writer.join(0.3)
        return rows


def test_a_line_stored_while_the_first_page_is_read_is_followed(tmp_path: Path) -> None:
    """A line stored between the first page's lines and its newest id was neither shown nor followed."""
    store = _IngestDuringQuery(tmp_path / "logs.db")
    try:
        store.line_file = tmp_path / "app.log"
        append(store.line_file, record("GET /probe 404", ts=5.0))
        page = query_logs(store, {"grep": "/probe", "source": "instance"})
        assert store.writer is not None
        store.writer.join(10)
        shown = [line["msg"] for line in page["lines"]]
        followed, _ = _newer(_fetch(store), _queries("/probe")[:1], [page["last_id"]])
        assert shown + [line["msg"] for line in followed] == ["GET /probe 404"]
    finally:
        store.close()


def test_logs_follow_prints_every_line_once_while_lines_keep_arriving(tmp_path: Path) -> None:
    """`sprout logs -f --grep` (no daemon: it reads the store) while app and router lines are stored one
    transaction at a time, as the daemon's ingester stores them: every line once, none skipped (one cursor
    shared by the app and router queries skipped 2-12 of the 1,000 app lines in each of three runs)."""
    home = Home(tmp_path / "home")
    store = LogStore(home.log_db)
    env = {**os.environ, "SPROUT_HOME": str(home.root), "COLUMNS": "400"}
    follower = subprocess.Popen(
        [sys.executable, "-m", "sprout", "logs", str(tmp_path / "no-app"), "-f", "--grep", "/probe"],
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    pairs = 1000
    try:
        time.sleep(2.0)  # the command's first page, before any line: what follows is all followed
        app_log, access_log = tmp_path / "app.log", tmp_path / "access.log"
        for i in range(pairs):
            append(app_log, record(f"GET /probe-{i} 404", ts=10.0 + i, env="production"))
            store.ingest_file(app_log, "instance")
            with open(access_log, "a", encoding="utf-8") as f:
                f.write(router_line(10.0 + i, f"/probe-{i}", status=404))
            store.ingest_file(access_log, "router")
        assert follower.stdout is not None
        lines = PipeLines(follower.stdout.fileno())
        lines.until(lambda printed: len(printed) >= 2 * pairs, 20.0)
        printed = lines.until(lambda _: False, 1.0)  # a second more shows whether any line comes twice
    finally:
        os.killpg(follower.pid, signal.SIGKILL)
        follower.wait(10)
        assert follower.stdout is not None
        follower.stdout.close()
        store.close()
    app_lines = [line for line in printed if " stdout: " in line]
    router_lines = [line for line in printed if " router " in line]
    assert len(app_lines) == pairs, f"{pairs - len(app_lines)} app lines skipped: {printed[:6]}"
    assert len(router_lines) == pairs
    assert [line.split("/probe-")[1].split()[0] for line in app_lines] == [str(i) for i in range(pairs)]

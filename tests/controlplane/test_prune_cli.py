"""`sprout prune` runs the daemon's housekeeping on demand, with no daemon running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sprout.logs.record import LogRecord, format_line
from sprout.logs.store import LogStore
from sprout.paths import Home

DAY = 86400.0


def sprout(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_prune_removes_old_log_lines_without_a_daemon(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    now = time.time()
    log = tmp_path / "i-1.log"
    log.write_text(
        format_line(LogRecord(now - 30 * DAY, "stdout", "i-1", "shop", "production", "v1", "a", "last month"))
        + format_line(LogRecord(now, "stdout", "i-1", "shop", "production", "v1", "a", "today"))
    )
    store = LogStore(home.log_db)
    try:
        assert store.ingest_file(log, "instance") == 2
    finally:
        store.close()
    done = sprout("prune", home=home.root, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "removed 1 log line\n"
    shown = sprout("logs", "--since", "60d", home=home.root, cwd=tmp_path)
    assert [line.split(" ", 1)[1] for line in shown.stdout.splitlines()] == ["i-1 v1 stdout: today"]
    again = sprout("prune", home=home.root, cwd=tmp_path)
    assert again.stdout == (
        "nothing to remove: log lines are within their retention (default 14 days), stopped instances' "
        "folders stay 1 h, and each app keeps its versions in use, its 5 newest and any used in the last 1 h\n"
    )
    # It ran in the command itself: no daemon was started for it.
    assert "daemon: not running" in sprout("daemon", "status", home=home.root, cwd=tmp_path).stdout


def test_prune_in_an_unused_home_creates_nothing(tmp_path: Path) -> None:
    done = sprout("prune", home=tmp_path / "home", cwd=tmp_path)
    assert done.stdout == f"nothing to prune: no Sprout home at {tmp_path / 'home'}\n"
    assert not (tmp_path / "home").exists()

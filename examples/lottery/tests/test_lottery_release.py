"""The release command opens the round once; re-running it keeps the published commitment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lottery import entries
from lottery.db import engine_from_url
from lottery.migrate import migrate

APP_DIR = Path(__file__).resolve().parents[1]


def test_migrate_is_idempotent_and_keeps_the_commitment(database_url: str) -> None:
    engine = engine_from_url(database_url)
    try:
        assert migrate(engine) is True
        before = entries.round_info(engine)
        entries.enter(engine, "a@example.org")
        assert migrate(engine) is False
        assert entries.round_info(engine) == before
        assert entries.count(engine) == 1
    finally:
        engine.dispose()


def test_release_command_runs_twice(database_url: str) -> None:
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(APP_DIR))
    for outcome in ("round opened", "round unchanged"):
        result = subprocess.run(
            [sys.executable, "-m", "lottery.migrate"], env=env, cwd=APP_DIR, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(outcome)

"""The CLI on a pipe and in `--help`: whole lines when not a terminal, flags without a value, `--debug`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sprout.logs.record import LogRecord, format_line
from sprout.logs.store import LogStore
from sprout.paths import Home


def sprout(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No COLUMNS: Rich's own default (80 columns) is what a pipe got before.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "SPROUT_STORE")}
    env["SPROUT_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_piped_logs_keep_long_lines_whole(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    message = "GET /catalog?" + "&".join(f"item{i}=x" for i in range(40)) + " 200"
    instance_log = tmp_path / "i-1.log"
    instance_log.write_text(
        format_line(LogRecord(time.time(), "stdout", "i-1", "shop", "production", "v1", "a", message))
    )
    store = LogStore(home.log_db)
    try:
        assert store.ingest_file(instance_log, "instance") == 1
    finally:
        store.close()
    done = sprout("logs", str(tmp_path), home=home.root, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(message) > 300
    assert [line.split(" ", 1)[1] for line in lines] == [f"i-1 v1 stdout: {message}"]


def test_help_shows_flags_without_a_value(tmp_path: Path) -> None:
    top = sprout("--help", home=tmp_path, cwd=tmp_path)
    logs = sprout("logs", "--help", home=tmp_path, cwd=tmp_path)
    for done in (top, logs):
        assert done.returncode == 0, done.stderr
        assert "<bool>" not in done.stdout
    assert any(
        line.split() == ["│", "--debug", "Show", "tracebacks", "on", "errors.", "│"]
        for line in top.stdout.splitlines()
    )
    assert any(line.split()[:4] == ["│", "--follow", "-f", "Keep"] for line in logs.stdout.splitlines())
    # An option with a value still shows its type.
    assert any(line.split()[:4] == ["│", "--limit", "-n", "<int>"] for line in logs.stdout.splitlines())


def test_debug_is_a_plain_flag(tmp_path: Path) -> None:
    done = sprout("--debug", "true", "status", home=tmp_path / "home", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "error: command line: `--debug` is a flag and takes no value (got `true`); "
        "write `sprout --debug COMMAND …`\n"
    )
    assert not (tmp_path / "home").exists()
    plain = sprout("--debug", "validate", str(tmp_path), home=tmp_path / "home", cwd=tmp_path)
    # With the flag, errors come with their traceback.
    assert plain.returncode == 1
    assert "Traceback (most recent call last)" in plain.stderr

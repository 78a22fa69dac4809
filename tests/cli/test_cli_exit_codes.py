"""The `sprout` program's exit codes: a command's `typer.Exit(n)` and SproutError codes reach the shell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def sprout(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_daemon_status_without_a_daemon_exits_1(tmp_path: Path) -> None:
    result = sprout("daemon", "status", home=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("daemon: not running")


def test_a_user_error_exits_2_with_one_line(tmp_path: Path) -> None:
    result = sprout("validate", str(tmp_path), home=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {tmp_path}/sprout.toml: no manifest here (create one with `sprout init`)"
    )


def test_an_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    assert sprout("frobnicate", home=tmp_path).returncode == 2

"""Every command run outside an app folder, or given a folder that does not exist, says so in one line
(exit 2) and starts nothing: no errno text, no advice to validate a file that is not there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [
    ["up"],
    ["validate"],
    ["plan"],
    ["push"],
    ["deploy"],
    ["rollback"],
    ["swap"],
    ["open"],
    ["scale", "--min", "2"],
]


def _sprout(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_folder_without_a_manifest_is_named_in_one_line(tmp_path: Path, command: list[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _sprout([*command[:1], str(empty), *command[1:]], empty, tmp_path / "home")
    assert done.returncode == 2, done.stdout + done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"error: {empty}/sprout.toml: no manifest here ("), done.stderr
    assert "Errno" not in done.stderr and "validate" not in done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_folder_that_does_not_exist_is_named(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nosuchdir"
    done = _sprout([*command[:1], str(missing), *command[1:]], tmp_path, tmp_path / "home")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {missing}: no such folder"), done.stderr

"""Fixtures for the agent tests: a private SPROUT_HOME and agents cleaned up by their session id."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from instance_kit import kill_session

from sprout.paths import Home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A fresh SPROUT_HOME for one test."""
    monkeypatch.setenv("SPROUT_HOME", str(tmp_path / "home"))
    # These tests are about the cache itself (install once, redo a crashed one): always a private one.
    monkeypatch.delenv("SPROUT_CACHE_DIR", raising=False)
    return Home.from_env().ensure()


@pytest.fixture
def agents() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Agents started by a test; every process of their sessions is killed afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        kill_session(proc.pid)
        proc.wait(timeout=10)

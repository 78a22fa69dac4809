"""Fixtures for the local provider tests: a private SPROUT_HOME, a bundle, and a provider cleaned up after."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

# The probe app and helpers are shared with the agent tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

from instance_kit import kill_session, push, write_probe_app

from sprout.paths import Home
from sprout.providers.local import LocalProvider


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A fresh SPROUT_HOME for one test."""
    monkeypatch.setenv("SPROUT_HOME", str(tmp_path / "home"))
    # These tests are about the cache itself (install once, redo a crashed one): always a private one.
    monkeypatch.delenv("SPROUT_CACHE_DIR", raising=False)
    return Home.from_env().ensure()


@pytest.fixture
def probe_sha(home: Home, tmp_path: Path) -> str:
    """The probe app pushed to the home's folder store."""
    return push(write_probe_app(tmp_path / "probe"), home.artifacts, tmp_path / "scratch")


@pytest.fixture
def provider(home: Home) -> Iterator[LocalProvider]:
    """A local provider; every agent recorded under the home is killed with its session afterwards."""
    local = LocalProvider(home)
    yield local
    for observed in local.observe():
        kill_session(observed.pid)
    for observed in local.observe():
        local.stop(observed.instance_id, grace=0.1)
    # An agent whose record a failed test overwrote is not observable: find it by its spec path.
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(str(home.root) in part for part in proc.info["cmdline"] or ()):
            kill_session(proc.info["pid"])

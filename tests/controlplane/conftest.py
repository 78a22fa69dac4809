"""Fixtures shared by the control-plane tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sprout.controlplane.lifecycle import stop_daemon
from sprout.controlplane.router_process import RouterProcess
from sprout.paths import Home


@pytest.fixture
def daemon_home(tmp_path: Path) -> Iterator[Home]:
    """A home for a real daemon; afterwards the daemon, its router and every process of the home are gone."""
    home = Home(tmp_path / "daemon-home").ensure()
    yield home
    stop_daemon(home, timeout=10)
    RouterProcess(home).stop()
    for proc in psutil.process_iter(["cmdline"]):
        if str(home.root) in " ".join(proc.info["cmdline"] or []):
            proc.kill()

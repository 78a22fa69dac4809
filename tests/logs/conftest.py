"""Every log test runs with its own SPROUT_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def sprout_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "sprout-home"
    monkeypatch.setenv("SPROUT_HOME", str(home))
    return home

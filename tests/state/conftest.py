"""Fixtures for state store tests: a fresh SPROUT_HOME and store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sprout.spec import Manifest, parse_manifest
from sprout.state import StateStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("SPROUT_HOME", str(root))
    return root


@pytest.fixture
def store(home: Path) -> Iterator[StateStore]:
    state = StateStore(home / "state.db")
    yield state
    state.close()


@pytest.fixture
def manifest() -> Manifest:
    return parse_manifest(
        {
            "app": {"name": "microsite", "web": "python -m http.server $PORT"},
            "instances": {"min": 2, "zones": ["a", "b"]},
            "secrets": {"STRIPE_KEY": "env:STRIPE_KEY"},
        }
    )

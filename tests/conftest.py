"""Suite-wide settings: pip's and matplotlib's caches under /tmp, and an opt-in bundle cache shared across per-test homes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SHARED = Path(tempfile.gettempdir()) / f"sprout-tests-{os.getuid()}"
# Set at import, before any test starts a process: children inherit it.
os.environ.setdefault("PIP_CACHE_DIR", str(_SHARED / "pip-cache"))
os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
# Tools that would otherwise keep caches in the home folder (the suite writes only under /tmp and the repo).
os.environ.setdefault("MPLCONFIGDIR", str(_SHARED / "matplotlib"))


@pytest.fixture
def shared_bundle_cache(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $SPROUT_CACHE_DIR at one cache for the whole run: end-to-end tests then install each
    version's dependencies once, not once per test (tests of the cache itself must not use this)."""
    path = _SHARED / "bundle-cache"
    monkeypatch.setenv("SPROUT_CACHE_DIR", str(path))
    return path

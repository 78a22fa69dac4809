"""Suite-wide settings: pip's and matplotlib's caches under /tmp, an opt-in bundle cache shared across
per-test homes, and (under root) the removal of the caches a test's homes kept outside them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def _root_caches_removed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under root, a home's bundle cache lives in the temp dir, outside the home (see `Home.cache`):
    remove those of the homes a test made in its tmp_path (they would outlive it)."""
    if os.geteuid() != 0 or "tmp_path" not in request.fixturenames:
        yield
        return
    from sprout.paths import Home

    base: Path = request.getfixturevalue("tmp_path")
    yield
    folders = [base, *(p for p in base.glob("*") if p.is_dir()), *(p for p in base.glob("*/*") if p.is_dir())]
    for folder in folders:
        # Without a shared cache, the cache's parent is the home's own folder in the temp dir.
        shutil.rmtree(Home(folder.resolve()).cache.parent, ignore_errors=True)

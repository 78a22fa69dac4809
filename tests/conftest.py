"""Suite-wide settings: pip's and matplotlib's caches under /tmp, an opt-in bundle cache shared across
per-test homes, and (under root) tmp_path folders app users can pass through."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from loopback import LEASES
from sprout.ports import LEASES_ENV

_SHARED = Path(tempfile.gettempdir()) / f"sprout-tests-{os.getuid()}"
# Set at import, before any test starts a process: children inherit it.
os.environ.setdefault("PIP_CACHE_DIR", str(_SHARED / "pip-cache"))
os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
# A command run without a home of the test's own (`aws render`) keeps its state here, not in ~/.sprout.
os.environ.setdefault("SPROUT_HOME", str(_SHARED / "home"))
# Tools that would otherwise keep caches in the home folder (the suite writes only under /tmp and the repo).
os.environ.setdefault("MPLCONFIGDIR", str(_SHARED / "matplotlib"))
# One port lease record for the test kits and every home the tests start: no two get the same port.
os.environ.setdefault(LEASES_ENV, str(LEASES))


@pytest.fixture
def shared_bundle_cache(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $SPROUT_CACHE_DIR at one cache for the whole run: end-to-end tests then install each
    version's dependencies once, not once per test (tests of the cache itself must not use this)."""
    path = _SHARED / "bundle-cache"
    monkeypatch.setenv("SPROUT_CACHE_DIR", str(path))
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under root, apps run as users of their own, who must pass through the folders on the way to a test's
    home (to its `<home>-apps` folder): pytest's own temp root is private and shared by every session,
    so a root run without --basetemp gets a folder of its own that others may pass through."""
    if os.geteuid() != 0 or config.option.basetemp:
        return
    base = Path(tempfile.mkdtemp(prefix="sprout-pytest-"))
    base.chmod(0o711)
    config.option.basetemp = str(base / "t")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove that folder after a run that passed (a failed run's files stay for a look)."""
    basetemp = session.config.option.basetemp
    if (
        os.geteuid() == 0
        and basetemp
        and exitstatus == 0
        and Path(basetemp).parent.name.startswith("sprout-pytest-")
    ):
        shutil.rmtree(Path(basetemp).parent, ignore_errors=True)


@pytest.fixture(autouse=True)
def _tmp_path_reachable_by_app_users(request: pytest.FixtureRequest) -> None:
    """Under root, let others pass through (not list) a test's tmp_path and the folders above it up to the
    run's base (the basetemp and, on xdist, the worker's folder), which pytest makes private, on the way to
    the test's `<home>-apps` folder."""
    if os.geteuid() != 0 or "tmp_path" not in request.fixturenames:
        return
    path: Path = request.getfixturevalue("tmp_path")
    stops = {Path(tempfile.gettempdir()), Path.home(), Path("/")}
    for folder in (path, *path.parents):
        if folder.name.startswith("sprout-pytest-") or folder in stops:
            break  # the run's own base (already open to pass through), or a folder that is not the run's
        folder.chmod(stat.S_IMODE(folder.stat().st_mode) | 0o111)

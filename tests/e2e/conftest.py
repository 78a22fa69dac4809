"""Fixtures for end-to-end tests: a private Sprout (home, app, router port) torn down whatever happens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_kit import CANARY, Sprout, kill_all, make_app, processes_of

from loopback import free_port
from sprout.router.haproxy.config import Layout, remove_socket_folder


@pytest.fixture
def sprout(tmp_path: Path) -> Iterator[Sprout]:
    """The hello app with a planted secret; `sprout down` and a kill of any leftover process at the end."""
    # Autoscaling off: these tests hold the fleet at its minimum to check self-healing, not scaling.
    app = make_app(tmp_path, '[secrets]\nAPI_KEY = "env:SPROUT_E2E_CANARY"\n\n[scaling]\nenabled = false\n')
    instance = Sprout(
        home=tmp_path / "home", app_dir=app, port=free_port(), extra_env={"SPROUT_E2E_CANARY": CANARY}
    )
    try:
        yield instance
    finally:
        if instance.home.exists():
            instance.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(instance.home))


@pytest.fixture(autouse=True)
def no_haproxy_socket_folder_left(tmp_path: Path) -> Iterator[None]:
    """After a test (and after its fixtures killed what it started), the temp socket folder of any home of
    it deep enough to need one: most tests clean up by a kill of the home's processes, not `sprout down`."""
    yield
    for run in [*tmp_path.glob("*/run/haproxy"), *tmp_path.glob("*/*/run/haproxy")]:
        remove_socket_folder(Layout(run))

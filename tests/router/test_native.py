"""The compiled hot path (`sprout.router.native`): used when built from the sources beside it, never when
they changed since, never with SPROUT_ROUTER_PURE=1; the router proxies the same either way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import get, group, route, table, wait_healthy
from sprout.router import native

SRC = Path(native.__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built() -> None:
    """The build `make setup` made; built here when missing (CI must have a compiler: a failure fails)."""
    if native.state() == "compiled":
        return
    try:
        native.build()
    except (Exception, SystemExit) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no compiled hot path on this machine: {exc}")


def _proxy_some(router, backends) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client() as client:
        seen = set()
        for n in range(200):
            r = get(client, router, f"/item/{n}", "shop.localhost")
            assert r.status_code == 200
            seen.add(r.text.split()[1])
    assert seen == {str(b.port) for b in backends}


def test_the_router_runs_compiled_when_built_and_pure_python_when_asked(
    built, start_backend, start_router, monkeypatch, tmp_path
):
    backends = [start_backend("v1") for _ in range(2)]
    for pure in (False, True):
        if pure:
            monkeypatch.setenv(native.PURE_ENV, "1")
        router = start_router()
        health = httpx.get(f"http://127.0.0.1:{router.admin_port}/healthz").json()
        if pure:
            assert health["hot_path"] == f"pure: {native.PURE_ENV} is set"
        else:
            assert health["hot_path"] == "compiled"
        router.admin.put_table(table(route("shop", [group("blue", backends)])))
        wait_healthy(router, [f"blue-{b.port}" for b in backends])
        _proxy_some(router, backends)
        # Both routers append to the same access files: the second one's 200 come on top of the first's.
        rows = router.access_rows(400 if pure else 200)
        assert {row["status"] for row in rows} == {200} and len(rows) == (400 if pure else 200)
        router.kill()
    log = (tmp_path / "router.err").read_text()
    assert "hot path: compiled" in log and f"hot path: pure: {native.PURE_ENV} is set" in log


def test_a_build_older_than_its_sources_is_not_loaded(built, tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(SRC / "sprout", copy / "sprout", ignore=shutil.ignore_patterns("__pycache__"))
    probe = [sys.executable, "-c", "import sprout.router.exchange as e, sprout.router.native as n; "
             "print(e.__file__); print(n.running())"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(copy)}

    def loaded() -> list[str]:
        out = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
        return out.splitlines()

    module, running = loaded()
    assert module.startswith(str(copy)) and module.endswith(".so") and running == "compiled"
    exchange = copy / "sprout" / "router" / "exchange.py"
    exchange.write_text(exchange.read_text() + "\n# edited after the build\n")
    module, running = loaded()
    assert module == str(exchange)
    assert running.startswith("pure: the build is older than the sources")
    shutil.rmtree(native.folder(copy / "sprout" / "router"))
    assert loaded()[1].startswith("pure: not built")


def test_the_access_log_is_written_every_1024_requests_not_held_for_the_timer(
    start_backend, start_router, tmp_path
):
    """Regression: the whole interval's rows were formatted in one go on the event loop (~70 ms at 25 k
    req/s, the stack's p99). With the timer set to 60 s, the rows must reach the file by batch."""
    backends = [start_backend("v1")]
    router = start_router("--access-log-flush", "60")
    router.admin.put_table(table(route("shop", [group("blue", backends)])))
    wait_healthy(router, [f"blue-{backends[0].port}"])
    current = tmp_path / "access" / "current.log"
    with httpx.Client() as client:
        for n in range(1100):
            assert get(client, router, f"/batch/{n}", "shop.localhost").status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not current.exists() or current.read_text().count("\n") < 1024):
        time.sleep(0.05)
    assert current.exists() and current.read_text().count("\n") == 1024

"""The HAProxy engine as a user gets it: `sprout up --engine haproxy`, and the refusal without HAProxy."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import psutil
import pytest
from e2e_kit import Load, Sprout, app_process, make_app, private_sprout, processes_of

from sprout.router.haproxy.config import BINARY_ENV, Layout


def test_engine_haproxy_without_haproxy_installed_exits_2_naming_the_package(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    empty = tmp_path / "bin"
    empty.mkdir()
    sprout = Sprout(
        home=tmp_path / "home",
        app_dir=app,
        port=0,
        # A bare name is looked up on PATH alone: this PATH has no haproxy, as on a machine without it.
        extra_env={"PATH": str(empty), BINARY_ENV: "haproxy"},
        engine="haproxy",
    )
    result = sprout.run("up", str(app), "--engine", "haproxy", check=False, timeout=60)
    assert result.returncode == 2, result
    assert "apt-get install haproxy" in result.stdout + result.stderr
    assert not (sprout.home / "run" / "haproxy").exists()


@pytest.mark.slow
def test_up_on_haproxy_balances_survives_kill_9_and_restarts_with_its_table(
    tmp_path: Path, sprout: Sprout
) -> None:
    sprout.engine = "haproxy"
    sprout.up()
    router = sprout.router()
    assert router["engine"] == "haproxy"
    assert Path(f"/proc/{router['pid']}/exe").resolve().name.startswith("haproxy")
    env = sprout.wait_converged(60)
    with Load(sprout.port) as load:
        time.sleep(2)
        # Balancing: both instances answer.
        assert len(load.instances) == 2, load.instances
        # kill -9 of one backend: passive ejection and retries keep GETs whole while it is replaced.
        victim = next(i for i in env["instances"] if i["state"] == "running")
        os.kill(app_process(int(victim["pid"])).pid, signal.SIGKILL)
        sprout.wait_converged(90)
        time.sleep(1)
    assert load.ok > 100 and load.failed == [], load.failed[:10]
    # The access log reaches the central store.
    marker = f"/probe-{os.getpid()}"
    assert sprout.get(marker).status_code == 404
    deadline = time.monotonic() + 30
    while marker not in sprout.run("logs", str(sprout.app_dir), "--grep", marker).stdout:
        assert time.monotonic() < deadline, "the HAProxy access line never reached `sprout logs`"
        time.sleep(0.5)
    # HAProxy killed: the daemon starts a new one, which gets the table back without a `sprout up`.
    os.kill(int(router["pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if sprout.get("/").status_code == 200 and sprout.router()["pid"] != router["pid"]:
                break
        except Exception:
            pass
        assert time.monotonic() < deadline, "HAProxy was not restarted with its table"
        time.sleep(0.3)
    # The engine is saved: a later `up` without --engine keeps HAProxy.
    sprout.engine = None
    sprout.up()
    restarted = sprout.router()
    assert restarted["engine"] == "haproxy"
    assert sprout.get("/").status_code == 200
    sprout.run("down", str(sprout.app_dir))
    assert not psutil.pid_exists(int(restarted["pid"]))


@pytest.mark.slow
def test_a_deep_home_keeps_its_sockets_in_a_private_temp_folder_that_down_removes(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[scaling]\nenabled = false\n")
    home = tmp_path / ("a-deep-folder-" * 5) / "home"
    # Under root the app runs as a user of its own, who must pass through on the way to `<home>-apps`.
    home.parent.mkdir()
    home.parent.chmod(0o711)
    layout = Layout(home / "run" / "haproxy")
    folder = layout.socket.parent
    # HAProxy takes a socket path of at most 97 bytes: this home's run folder is too deep for one.
    assert folder != layout.root and len(str(layout.root / "haproxy.sock")) > 97
    with private_sprout(app, home) as sprout:
        sprout.engine = "haproxy"
        sprout.up()
        sprout.wait_converged(60)
        assert sprout.get("/").status_code == 200
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and layout.socket.is_socket()
        sprout.run("down", str(app))
        assert not folder.exists(), sorted(folder.iterdir())
        assert processes_of(home) == []

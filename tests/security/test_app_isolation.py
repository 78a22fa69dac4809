"""Apps can't read the platform: under root, each app runs as a user of its own that can open neither the
API token nor another app's environment (issue 19, acceptance 2)."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_kit import Sprout, app_process, kill_all, processes_of

from loopback import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="apps switch to users of their own only under root"),
]

PROBE = Path(__file__).resolve().parent / "apps" / "probe"
DENIED = f"PermissionError errno {errno.EACCES}"


def probe_app(tmp_path: Path, name: str) -> Path:
    """A copy of the probe app named `name`: one instance, health at `/`."""
    app = tmp_path / name
    shutil.copytree(PROBE, app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "sprout.toml").write_text(
        f'[app]\nname = "{name}"\nweb = "python -m probe"\n\n'
        '[health]\npath = "/"\ninterval = "1s"\nhealthy_threshold = 1\n\n'
        '[instances]\nmin = 1\nmax = 1\nzones = ["a"]\n\n[scaling]\nenabled = false\n\n'
        '[secrets]\nPROBE_SECRET = "env:PROBE_SECRET"\n'
    )
    return app


@pytest.fixture
def two_apps(tmp_path: Path) -> Iterator[tuple[Sprout, Path, Path]]:
    """One home running two probe apps; both torn down and every leftover process killed at the end."""
    first, second = probe_app(tmp_path, "iso-probe-a"), probe_app(tmp_path, "iso-probe-b")
    sprout = Sprout(
        home=tmp_path / "home", app_dir=first, port=free_port(), extra_env={"PROBE_SECRET": "s3cr3t-iso"}
    )
    try:
        yield sprout, first, second
    finally:
        for app in (first, second):
            if sprout.home.exists():
                sprout.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(sprout.home))


def test_an_app_can_open_neither_the_api_token_nor_another_apps_environment(
    two_apps: tuple[Sprout, Path, Path],
) -> None:
    sprout, first, second = two_apps
    for app in (first, second):
        sprout.run("up", str(app), "--port", str(sprout.port))
    status = sprout.status()["environments"]
    agents = {e["app"]: e["instances"][0]["pid"] for e in status}
    apps = {name: app_process(pid) for name, pid in agents.items()}
    # Each app process runs as its own unprivileged user, created on demand.
    for name, proc in apps.items():
        assert proc.uids().real == pwd.getpwnam(f"sprout-{name}").pw_uid != 0
    token = sprout.home / "run" / "api.token"
    assert token.is_file()

    def probe(app: str, path: Path, pid: int) -> dict[str, str]:
        response = httpx.get(
            f"http://127.0.0.1:{sprout.port}/probe",
            params={"path": str(path), "pid": str(pid)},
            headers={"Host": f"{app}.localhost"},
            timeout=10,
            trust_env=False,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    for me, other in (("iso-probe-a", "iso-probe-b"), ("iso-probe-b", "iso-probe-a")):
        report = probe(me, token, apps[other].pid)
        assert report["user"] == f"sprout-{me}"
        assert report["file"] == DENIED
        assert report["environ"] == DENIED
        # The control: an app reads its own environment, and its HOME is a folder of its own.
        assert report["own_environ"].startswith("read ")
        assert f"/users/sprout-{me}/instances/i-" in report["home"] and report["home"].endswith("/home")
        # Nor the router token, nor the environment of its own agent (root, holding the secrets).
        report = probe(me, sprout.home / "run" / "router.token", agents[me])
        assert report["file"] == DENIED
        assert report["environ"] == DENIED

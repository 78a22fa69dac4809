"""`down` names what runs when it is given a wrong name or no manifest, creates nothing in an unused home,
and a failed first `up` leaves no daemon or router running for nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_kit import Sprout, edit_manifest, kill_all, make_app, processes_of

from loopback import free_port

#: How long the daemon and router may take to exit after a failed `up` (the daemon's own stop bound).
GONE_WITHIN = 30.0


@pytest.fixture
def sprout(tmp_path: Path) -> Iterator[Sprout]:
    instance = Sprout(home=tmp_path / "home", app_dir=make_app(tmp_path), port=free_port())
    try:
        yield instance
    finally:
        if instance.home.exists():
            instance.run("down", str(instance.app_dir), check=False, timeout=90)
        kill_all(processes_of(instance.home))


def test_down_in_an_unused_home_creates_nothing(tmp_path: Path) -> None:
    sprout = Sprout(home=tmp_path / "home", app_dir=make_app(tmp_path), port=free_port())
    done = sprout.run("down", str(sprout.app_dir))
    assert done.stdout == "hello/production: nothing is running\n"
    assert not sprout.home.exists()
    # Without a manifest either: the hint, and still no folders.
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = sprout.run("down", str(empty), check=False)
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: {empty}/sprout.toml: no manifest here (create one with `sprout init`); "
        "to stop an app by name, `sprout down --app NAME [--env ENV]`\n"
    )
    assert not sprout.home.exists()


def test_route_default_to_an_environment_that_does_not_exist_starts_nothing(tmp_path: Path) -> None:
    sprout = Sprout(home=tmp_path / "home", app_dir=make_app(tmp_path), port=free_port())
    shown = sprout.run("route", "default")
    assert shown.stdout.startswith("default route: none")
    refused = sprout.run("route", "default", "nope/production", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr == (
        "error: route default: nope/production: no such environment (none yet; create one with `sprout up`)\n"
    )
    # No daemon or router was started for it, and the unused home was not even created.
    assert not sprout.home.exists()
    assert processes_of(sprout.home) == []


@pytest.mark.parametrize("env", ["../other/production", "Prod", "a b", "x" * 21, "-staging"])
def test_an_environment_name_that_is_no_host_label_is_refused_before_anything_starts(
    tmp_path: Path, env: str
) -> None:
    sprout = Sprout(home=tmp_path / "home", app_dir=make_app(tmp_path), port=free_port())
    for command in ("up", "down"):
        refused = sprout.run(command, str(sprout.app_dir), "--env", env, check=False)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.startswith(f"error: --env: environment name {env!r} must be 1 to 20 lowercase")
    assert not sprout.home.exists()


def test_down_outside_an_app_folder_stops_a_daemon_that_serves_nothing(sprout: Sprout) -> None:
    sprout.run("daemon", "start", "--port", str(sprout.port))
    assert processes_of(sprout.home)
    empty = sprout.app_dir.parent / "empty"
    empty.mkdir()
    done = sprout.run("down", str(empty))
    assert done.stdout == "no environments left: router and daemon stopped\n"
    deadline = time.monotonic() + GONE_WITHIN
    while processes_of(sprout.home):
        assert time.monotonic() < deadline, processes_of(sprout.home)
        time.sleep(0.1)


@pytest.mark.slow
def test_down_of_a_misspelt_app_lists_what_runs(sprout: Sprout) -> None:
    sprout.up()
    empty = sprout.app_dir.parent / "empty"
    empty.mkdir()
    missing = sprout.run("down", str(empty), check=False)
    assert missing.returncode == 2
    assert missing.stderr.endswith(
        "to stop an app by name, `sprout down --app NAME [--env ENV]` (environments here: hello/production)\n"
    )
    typo = sprout.run("down", "--app", "helo")
    assert typo.stdout == (
        "helo/production: no such environment; nothing to stop; running: hello/production; "
        "did you mean `--app hello`?\n1 environment(s) still running; the daemon and router stay up\n"
    )
    wrong_env = sprout.run("down", "--app", "hello", "--env", "staging")
    assert wrong_env.stdout.startswith(
        "hello/staging: no such environment; nothing to stop; running: hello/production; "
        "did you mean `--env production`?\n"
    )
    assert sprout.status()["environments"][0]["app"] == "hello"


@pytest.mark.slow
def test_a_failed_first_up_leaves_nothing_running(sprout: Sprout) -> None:
    edit_manifest(sprout.app_dir, 'web = "python -m hello"', 'web = "python -m hello"\nrelease = "exit 5"')
    result = sprout.run("up", str(sprout.app_dir), "--port", str(sprout.port), check=False)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "release command `exit 5` of v1 exited with code 5; nothing was applied" in result.stderr.replace(
        "\n", " "
    )
    deadline = time.monotonic() + GONE_WITHIN
    while processes_of(sprout.home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of(sprout.home) == []
    assert "daemon: not running" in sprout.run("daemon", "status", check=False).stdout

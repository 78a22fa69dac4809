"""Issue 13 point 4, acceptance 4: one app's manifest can no longer freeze another app's healing.

Bad `[health]` durations and host names another environment serves are refused by `validate`, `plan`
and `up` (exit 2 within 5 s, naming the field or the environment); a conflicting entry that reaches the
router anyway (an environment recorded before these checks existed) is rejected alone, so a healthy app
killed meanwhile is back and routed within 20 s; `down` of either app leaves no process behind.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_kit import HELLO, Load, Sprout, alive, app_process, edit_manifest, kill_all, processes_of

from loopback import free_port
from sprout.paths import Home
from sprout.router.admission import admit_table
from sprout.router.table import parse_table
from sprout.spec import load_manifest
from sprout.state import StateStore

#: Acceptance 4's bounds. A refusal is a CLI start and a parse (about 1 s): 30 s is a deadline a loaded
#: machine never reaches and a refusal that waits for something (a health check, a lock) always does.
REFUSED_WITHIN = 30.0
HEALED_WITHIN = 20.0

# (case, manifest edit, the error line after "<file>: ")
BAD_HEALTH = [
    (
        "timeout 0s",
        'interval = "1s"',
        'interval = "1s"\ntimeout = "0s"',
        "health.timeout: 0s is below the minimum of 100ms (a shorter check fails whenever the instance pauses "
        'for a moment); set timeout = "100ms" or more',
    ),
    (
        "interval 1ms",
        'interval = "1s"',
        'interval = "1ms"\ntimeout = "100ms"',
        "health.interval: 1ms is below the minimum of 250ms (shorter intervals spend the router's CPU on "
        'health checks); set interval = "250ms" or more',
    ),
    (
        "grace 0s",
        'interval = "1s"',
        'interval = "1s"\ngrace = "0s"',
        "health.grace: 0s is below the minimum of 1s (a shorter grace replaces every new instance before it "
        'can start); set grace = "1s" or more',
    ),
]


def app_copy(root: Path, name: str, hosts: list[str] | None = None, extra: str = "") -> Path:
    """examples/hello as app `name` (its own host names unless `hosts`), scaling off, plus `extra`."""
    folder = root / name
    shutil.copytree(HELLO, folder, ignore=shutil.ignore_patterns("__pycache__"))
    edit_manifest(folder, 'name = "hello"', f'name = "{name}"')
    text = "\n[scaling]\nenabled = false\n" + extra
    if hosts is not None:
        text += f"\n[router]\nhosts = {hosts!r}\n".replace("'", '"')
    with open(folder / "sprout.toml", "a", encoding="utf-8") as out:
        out.write(text)
    return folder


def timed(sprout: Sprout, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI; its result and how long it took (the acceptance bound is the subprocess timeout)."""
    started = time.monotonic()
    result = sprout.run(*args, check=False, timeout=REFUSED_WITHIN)
    return result, time.monotonic() - started


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Sprout]:
    """A private Sprout home (hello as its first app); every process of it killed by pid at the end."""
    instance = Sprout(home=tmp_path / "home", app_dir=app_copy(tmp_path, "hello"), port=free_port())
    try:
        yield instance
    finally:
        nodes = [
            int(node["pid"])
            for path in (instance.home / "envs").glob("*/*/memcached.json")
            for node in json.loads(path.read_text())["nodes"]
        ]
        for app in ("other", "hello"):
            if (tmp_path / app).exists() and instance.home.exists():
                instance.run("down", str(tmp_path / app), check=False, timeout=90)
        kill_all(processes_of(instance.home))
        kill_all(p for p in map(psutil.Process, alive(nodes)) if "memcached" in p.name())


@pytest.mark.parametrize(("case", "old", "new", "error"), BAD_HEALTH, ids=[c for c, *_ in BAD_HEALTH])
def test_bad_health_is_refused_by_validate_plan_and_up(
    home: Sprout, tmp_path: Path, case: str, old: str, new: str, error: str
) -> None:
    bad = app_copy(tmp_path, "bad")
    edit_manifest(bad, old, new)
    for command in ("validate", "plan", "up"):
        result, took = timed(home, command, str(bad))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.strip().endswith(f"{bad / 'sprout.toml'}: {error}"), (command, result.stderr)
        print(f"\n{case}: sprout {command} exit 2 in {took:.2f}s")
    assert processes_of(home.home) == []


def test_the_router_applies_each_entry_on_its_own() -> None:
    current = parse_table({"routes": [{"name": "hello", "hosts": ["hello.localhost"]}]})
    proposed = {
        "routes": [
            {"name": "bad", "hosts": ["bad.localhost"], "health": {"timeout": 0}},
            {"name": "hello", "hosts": ["hello.localhost", "www.localhost"]},
            {"name": "thief", "hosts": ["hello.localhost"]},
            {"name": "other", "hosts": ["other.localhost"], "default": True},
            {"name": "other", "hosts": ["again.localhost"]},
            {"name": "late", "hosts": ["late.localhost"], "default": True},
        ]
    }
    table, rejected = admit_table(proposed, current)
    assert [(r.name, r.hosts) for r in table.routes] == [
        ("hello", ["hello.localhost", "www.localhost"]),
        ("other", ["other.localhost"]),
    ]
    assert [r.to_json() for r in rejected] == [
        {"route": "bad", "error": "health.timeout: Input should be greater than 0"},
        {"route": "other", "error": "duplicate route name 'other'"},
        {"route": "thief", "error": "host 'hello.localhost' is already served by route 'hello'"},
        {"route": "late", "error": "route 'other' is already the default route"},
    ]


def test_a_rejected_entry_keeps_its_previous_one() -> None:
    current = parse_table(
        {"routes": [{"name": "a", "hosts": ["a.localhost"]}, {"name": "b", "hosts": ["b.localhost"]}]}
    )
    # b moves to a's host name: refused, b keeps serving b.localhost; a newcomer takes a freed name.
    proposed = {
        "routes": [
            {"name": "b", "hosts": ["a.localhost"]},
            {"name": "a", "hosts": ["a2.localhost", "a.localhost"]},
            {"name": "c", "hosts": ["b.localhost"]},
        ]
    }
    table, rejected = admit_table(proposed, current)
    assert [(r.name, r.hosts) for r in table.routes] == [
        ("b", ["b.localhost"]),
        ("a", ["a2.localhost", "a.localhost"]),
    ]
    assert [r.to_json() for r in rejected] == [
        {"route": "b", "error": "host 'a.localhost' is already served by route 'a'"},
        {"route": "c", "error": "host 'b.localhost' is already served by route 'b'"},
    ]


def _events(sprout: Sprout, kind: str) -> list[dict[str, object]]:
    answer = httpx.get(
        f"{sprout.daemon()['api_url']}/v1/events",
        params={"kind": kind, "limit": 1000},
        headers={"Authorization": f"Bearer {sprout.token()}"},
        timeout=10,
        trust_env=False,
    )
    answer.raise_for_status()
    return list(answer.json()["events"])


@pytest.mark.slow
def test_a_conflicting_app_never_freezes_the_healing_of_another(home: Sprout, tmp_path: Path) -> None:
    # Two healthy apps; "other" runs its own memcached nodes (processes `down` must stop too).
    other = app_copy(tmp_path, "other", extra='\n[resources.sessions]\nengine = "memcached"\n')
    home.up()
    home.run("up", str(other), "--port", str(home.port))
    home.wait_converged(60)
    others = home.environment("other")
    other_pids = [i["pid"] for i in others["instances"]] + _memcached_pids(home, "other")
    assert len(other_pids) == 4 and alive(other_pids) == other_pids

    # Host names another app serves: refused by validate, plan and up, naming the environment.
    thief = app_copy(tmp_path, "thief", hosts=["hello.localhost"])
    conflict = (
        f'{thief / "sprout.toml"}: router.hosts: "hello.localhost" is already served by hello/production; '
        "choose another host name, or stop hello/production first with `sprout down`"
    )
    for command in ("validate", "plan", "up"):
        result, took = timed(home, command, str(thief))
        assert (result.returncode, result.stderr.strip()) == (2, f"error: {conflict}"), result.stdout
        print(f"\nhost conflict: sprout {command} exit 2 in {took:.2f}s")

    # An environment recorded before these checks existed claims hello's host name: the router rejects
    # that entry alone and the control plane says so on that environment.
    store = StateStore(home.home / "state.db")
    try:
        stolen = app_copy(tmp_path / "stolen", "other", hosts=["hello.localhost"])
        store.upsert_environment("other", "production", load_manifest(stolen), other)
    finally:
        store.close()
    rejected = _wait(lambda: _events(home, "router.rejected"), 10, "no router.rejected event")
    assert [(e["app"], e["env"]) for e in rejected] == [("other", "production")]
    assert rejected[0]["message"] == (
        "other/production: the router refused its routing entry (host 'hello.localhost' is already served "
        "by route 'hello-production') and serves the other environments as before; fix the manifest and run "
        "`sprout up` again"
    )

    # Meanwhile a hello instance dies (while bad manifests are being applied): healed and routed in 20 s.
    victim = home.environment()["instances"][0]
    with Load(home.port, max_seconds=60) as load:
        app_process(victim["pid"]).send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for case, old, new, _ in BAD_HEALTH:
            bad = app_copy(tmp_path / case.replace(" ", "-"), "bad")
            edit_manifest(bad, old, new)
            assert timed(home, "up", str(bad), "--port", str(home.port))[0].returncode == 2
        found = home.wait_converged(HEALED_WITHIN - (time.monotonic() - killed), without=victim["id"])
        fresh = {i["id"] for i in found["instances"]} - {victim["id"]}
        _wait(lambda: fresh & load.instances, HEALED_WITHIN - (time.monotonic() - killed), "no traffic to it")
        healed = time.monotonic() - killed
    print(f"\nhello kill -9 while other's entry is rejected: healed and routed in {healed:.1f}s")
    assert all(e["app"] == "other" for e in _events(home, "router.rejected"))

    # `down` of either app leaves no process of it behind (agents, apps, memcached nodes).
    home.run("down", str(other))
    assert _wait(lambda: not alive(other_pids), 10, f"left running: {alive(other_pids)}")
    home.run("down", str(home.app_dir))
    assert _wait(lambda: not processes_of(home.home), 10, f"left running: {processes_of(home.home)}")


def _memcached_pids(sprout: Sprout, app: str) -> list[int]:
    """The pids of an environment's managed memcached nodes, as the control plane recorded them."""
    nodes = json.loads((Home(sprout.home).env_dir(app, "production") / "memcached.json").read_text())["nodes"]
    return [int(node["pid"]) for node in nodes]


def _wait(probe, timeout: float, why: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{why} within {timeout:.1f}s")
        time.sleep(0.2)


@pytest.mark.slow
def test_down_after_an_up_that_failed_before_recording_leaves_nothing_running(
    home: Sprout, tmp_path: Path
) -> None:
    # The release command runs before the environment is recorded, with the memcached nodes it needs.
    broken = app_copy(
        tmp_path, "other", extra='\n[resources.sessions]\nengine = "memcached"\n', hosts=["other.localhost"]
    )
    edit_manifest(
        broken,
        'install = "python -m compileall -q hello"',
        'install = "python -m compileall -q hello"\nrelease = "exit 3"',
    )
    failed = home.run("up", str(broken), "--port", str(home.port), check=False)
    assert failed.returncode != 0 and "release" in failed.stderr, failed.stderr
    # The failed first `up` stops what it started itself: the release phase's nodes, router and daemon.
    assert _wait(lambda: not processes_of(home.home), 30, f"left running: {processes_of(home.home)}")
    down = home.run("down", str(broken))
    assert down.stdout == "other/production: nothing is running\n"

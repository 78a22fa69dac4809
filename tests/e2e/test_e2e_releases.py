"""Acceptance of releases (issue 5, points 2-7) with real processes: daemon, router, agents, the relapp app.

Every test runs a steady GET + POST load through the router and asserts the exact outcome: which
versions answered, how many requests failed, what the history says. Figures are printed (`-s`).
Point 6 (the daemon killed at each step of a release) is the local case of the release tests every
provider shares, tests/deploy/test_provider_releases.py.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_kit import Sprout, kill_all, processes_of
from release_kit import (
    StepWatcher,
    VersionLoad,
    cli,
    converged_at,
    make_relapp,
    set_manifest,
)

from loopback import free_port
from sprout.paths import Home

pytestmark = pytest.mark.slow

APP = "relapp"


@pytest.fixture
def rel(tmp_path: Path, shared_bundle_cache: Path, request: pytest.FixtureRequest) -> Iterator[Sprout]:
    """relapp v1 up with 2 instances (on the engine a test asks for through `indirect`, else the default);
    `sprout down` and a kill of any leftover process at the end."""
    engine = getattr(request, "param", None)
    instance = Sprout(home=tmp_path / "home", app_dir=make_relapp(tmp_path), port=free_port(), engine=engine)
    try:
        instance.up()
        yield instance
    finally:
        # `sprout down` is tested elsewhere; here a kill by pid is the quick, sure cleanup.
        kill_all(processes_of(instance.home))


def new_version(sprout: Sprout, marker: str) -> None:
    """Change the app folder's content so the next push is a new version."""
    (sprout.app_dir / "marker.txt").write_text(marker)


def output(result: object) -> str:
    return f"{getattr(result, 'stdout', '')}\n{getattr(result, 'stderr', '')}"


def serving(sprout: Sprout) -> list[dict[str, object]]:
    """The environment's groups that take traffic."""
    return [g for g in sprout.environment(APP)["groups"] if g["weight"] > 0]


@pytest.mark.parametrize("rel", ["sprout", "haproxy"], indirect=True)
def test_bluegreen_rollback_inside_the_window_is_instant(rel: Sprout) -> None:
    with VersionLoad(rel.port) as load:
        load.wait_all("v1", seconds=0.5)
        new_version(rel, "v2")
        rel.run("deploy", str(rel.app_dir))
        load.wait_all("v2", seconds=0.5)
        started = time.time()
        result = rel.run("rollback", str(rel.app_dir))
        command = time.time() - started
        load.wait_all("v1", seconds=1.0)
    back = converged_at(load.hits, "v1", started)
    assert back is not None
    history = json.loads(rel.run("history", str(rel.app_dir), "--json").stdout)
    # The daemon records the rollback right after the switch: what precedes it is the CLI's own start.
    recorded = datetime.fromisoformat(history[-1]["time"].replace("Z", "+00:00")).timestamp()
    print(
        f"\n[point 2] rollback: traffic back on v1 {back - started:.3f}s after the command started "
        f"(switch recorded by the daemon at {recorded - started:.3f}s, command took {command:.3f}s); "
        f"{len(load.hits)} requests, {len(load.failed)} failed"
    )
    assert "traffic is back on v1 (warm fleet, no launch)" in result.stdout
    # On a quiet machine 0.7-0.8 s, most of it Python starting the CLI. When the machine is so loaded
    # that the CLI alone starts slower than that, hold the platform's part to the goal: traffic moved
    # within 0.2 s of the switch being recorded.
    cli_start = recorded - started
    assert back - started <= 1.0 or (cli_start > 0.8 and back - recorded <= 0.2)
    assert load.failed == []
    assert [(g["version"], g["weight"]) for g in serving(rel)] == [("v1", 100)]
    assert history[-1]["action"] == "rollback" and history[-1]["version"] == "v1"
    assert "instant rollback to v1" in history[-1]["diff_text"]


def test_canary_with_a_bad_version_rolls_back_automatically(rel: Sprout) -> None:
    new_version(rel, "v2")
    (rel.app_dir / "BAD_RATE").write_text("0.05")
    watcher = StepWatcher(rel.home)
    try:
        with VersionLoad(rel.port) as load:
            load.wait_all("v1", seconds=0.5)
            result = rel.run("deploy", str(rel.app_dir), "--strategy", "canary", check=False)
            time.sleep(0.5)
        deployment = watcher.latest()
        assert deployment is not None
        entered = watcher.step_times(deployment.id)
    finally:
        watcher.close()
    assert result.returncode != 0, output(result)
    assert "rolled_back" in output(result) and "canary analysis: canary 5xx rate" in output(result)
    assert deployment.outcome == "rolled_back"
    assert deployment.reason is not None and deployment.reason.startswith("canary analysis: canary 5xx rate")
    assert deployment.finished_at is not None
    interval, weight = 3.0, 20
    # From the first canary step (weights shifted) to the verdict and to traffic back on v1.
    shifted = entered["canary_shift"]
    verdict = entered["aborting"] - shifted
    exposure = [h for h in load.hits if shifted <= h.start <= deployment.finished_at]
    on_canary = [h for h in exposure if h.version == "v2"]
    bound = weight / 100 * 0.05 * len(exposure)
    # The router picks groups at random by weight: allow three standard deviations of the canary's share.
    spread = 0.05 * 3 * math.sqrt(len(exposure) * weight / 100 * (1 - weight / 100))
    print(
        f"\n[point 3] canary: rolled back {verdict:.2f}s after the first canary step (interval {interval:g}s); "
        f"exposure {len(exposure)} requests, {len(on_canary)} on the canary, {len(load.failed)} failed "
        f"(bound {weight}% x 5% x {len(exposure)} = {bound:.1f}, +{spread:.1f} for the random split)"
    )
    assert verdict <= 2 * interval
    assert load.failed, "the bad canary served no failing request: the test did not test anything"
    assert all(h.version == "v2" and h.status == 500 for h in load.failed)
    assert len(load.failed) <= bound + spread
    assert load.versions(deployment.finished_at + 0.2) == {"v1"}
    assert [(g["version"], g["weight"]) for g in serving(rel)] == [("v1", 100)]
    history = json.loads(rel.run("history", str(rel.app_dir), "--json").stdout)
    assert history[-1]["action"] == "deploy" and history[-1]["version"] == "v2"
    assert "rolled_back" in history[-1]["diff_text"] and "canary analysis:" in history[-1]["diff_text"]


def test_a_version_that_never_becomes_healthy_is_aborted_unseen(rel: Sprout) -> None:
    new_version(rel, "v2")
    (rel.app_dir / "UNHEALTHY").write_text("yes")
    set_manifest(rel.app_dir, 'health_timeout = "15s"', 'health_timeout = "4s"')
    with VersionLoad(rel.port) as load:
        load.wait_all("v1", seconds=0.5)
        started = time.monotonic()
        result = rel.run("deploy", str(rel.app_dir), check=False)
        took = time.monotonic() - started
        time.sleep(0.5)
    text = output(result)
    print(
        f"\n[point 4] unhealthy v2: aborted in {took:.1f}s; {len(load.hits)} requests, {len(load.failed)} failed"
    )
    print(text)
    assert result.returncode != 0
    assert "aborted" in text and "/healthz" in text
    assert "its last log lines" in text and "GET /healthz 500" in text
    assert load.versions() == {"v1"}
    assert load.failed == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and {i["version"] for i in rel.environment(APP)["instances"]} != {"v1"}:
        time.sleep(0.2)
    env = rel.environment(APP)
    assert {i["version"] for i in env["instances"]} == {"v1"}
    assert env["version"] == "v1"
    assert [(g["version"], g["weight"]) for g in serving(rel)] == [("v1", 100)]


def test_a_version_whose_tests_fail_is_never_deployed(rel: Sprout) -> None:
    new_version(rel, "v2")
    (rel.app_dir / "FAIL_TESTS").write_text("yes")
    watcher = StepWatcher(rel.home)
    try:
        with VersionLoad(rel.port) as load:
            result = rel.run("deploy", str(rel.app_dir), check=False)
            time.sleep(0.3)
        releases = watcher.store.list_deployments(APP, "production")
    finally:
        watcher.close()
    text = output(result)
    print(f"\n[point 5] failing tests: exit {result.returncode}; {len(load.failed)} failed requests\n{text}")
    assert result.returncode != 0
    assert "the app's tests failed (`python check.py` exited 1" in text and "not deployed" in text
    assert "check: test_greeting ... FAILED" in text and "FAIL_TESTS present" in text
    assert [d for d in releases if d.version == "v2"] == []
    assert rel.environment(APP)["version"] == "v1"
    assert {i["version"] for i in rel.environment(APP)["instances"]} == {"v1"}
    assert load.versions() == {"v1"} and load.failed == []


def test_concurrent_deploys_one_proceeds_the_other_fails_fast(rel: Sprout) -> None:
    new_version(rel, "v2")
    rel.run("push", str(rel.app_dir))
    new_version(rel, "v3")
    rel.run("push", str(rel.app_dir))
    started = time.monotonic()
    procs = {v: cli(rel, "deploy", str(rel.app_dir), "--version", v, "--skip-tests") for v in ("v2", "v3")}
    ended: dict[str, float] = {}
    try:
        while len(ended) < 2 and time.monotonic() - started < 60:
            for v, proc in procs.items():
                if v not in ended and proc.poll() is not None:
                    ended[v] = time.monotonic() - started
            time.sleep(0.02)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    results = {v: (proc.wait(5), *proc.communicate()) for v, proc in procs.items()}
    winners = [v for v, (code, _, _) in results.items() if code == 0]
    losers = [v for v, (code, _, _) in results.items() if code != 0]
    assert len(winners) == 1 and len(losers) == 1, results
    (winner,), (loser,) = winners, losers
    text = results[loser][1] + results[loser][2]
    print(
        f"\n[point 7] concurrent deploys: {winner} proceeded ({ended[winner]:.1f}s), {loser} failed after {ended[loser]:.2f}s: {text.strip()}"
    )
    assert "relapp/production: another release is in progress (held by" in text
    assert f": {winner} (bluegreen) since" in text
    assert ended[loser] < 5.0
    assert rel.environment(APP)["version"] == winner
    watcher = StepWatcher(rel.home)
    try:
        releases = watcher.store.list_deployments(APP, "production")
    finally:
        watcher.close()
    assert [(d.version, d.outcome) for d in releases] == [(winner, "succeeded")]


def test_a_code_only_release_reuses_the_installed_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private cache: this test counts installs, which a cache shared with other tests would hide.
    monkeypatch.delenv("SPROUT_CACHE_DIR", raising=False)
    count = tmp_path / "installs.txt"
    app = make_relapp(tmp_path)
    (app / "requirements.txt").write_text("relapp-deps==1\n")
    set_manifest(
        app,
        'test = "python check.py"\n',
        'test = "python check.py"\ninstall = "echo installed >> $INSTALL_COUNT"\n'
        'install_inputs = ["requirements.txt"]\n',
    )
    (app / "sprout.toml").write_text(
        f'{(app / "sprout.toml").read_text()}\n[env]\nINSTALL_COUNT = "{count}"\n'
    )
    rel = Sprout(home=tmp_path / "home", app_dir=app, port=free_port())
    try:
        rel.up()
        new_version(rel, "v2")
        rel.run("deploy", str(app))
        assert count.read_text() == "installed\n"
        (app / "requirements.txt").write_text("relapp-deps==2\n")
        rel.run("deploy", str(app))
        assert count.read_text() == "installed\n" * 2
        assert rel.environment(APP)["version"] == "v3"
        cache = Home(rel.home.resolve()).cache  # beside the home under root (see docs/security.md)
        links = {p.name: os.readlink(p / "venv") for p in cache.iterdir() if (p / ".ready").is_file()}
    finally:
        kill_all(processes_of(rel.home))
    layers = sorted(p.name for p in (cache / "deps").iterdir() if p.is_dir())
    print(f"\n[point 1] 3 versions, {len(layers)} dependency layers: {sorted(links.values())}")
    # v1 and v2 (code only) share one layer; v3 (new requirements) has its own.
    assert sorted(Counter(links.values()).values()) == [1, 2]
    assert set(links.values()) == {f"../deps/{key}/venv" for key in layers}


def test_a_long_release_command_runs_beside_the_releases_loop_which_is_never_stalled(rel: Sprout) -> None:
    set_manifest(rel.app_dir, 'test = "python check.py"', 'test = "python check.py"\nrelease = "sleep 4"')
    new_version(rel, "slow-release")
    api, auth = rel.daemon()["api_url"], {"Authorization": f"Bearer {rel.token()}"}
    started = time.monotonic()
    rel.run("deploy", str(rel.app_dir), "--skip-tests", "--no-wait")
    waits: set[str] = set()
    stalled: list[dict[str, object]] = []
    passes: list[float] = []
    while time.monotonic() - started < 60:
        doc = httpx.get(api + "/v1/status", headers=auth, trust_env=False).json()
        loop = next(lp for lp in doc["daemon"]["loops"] if lp["name"] == "releases")
        stalled += [loop] if loop["stalled"] else []
        passes.append(loop["last_pass"])
        found = httpx.get(api + "/v1/deployments", params={"app": APP}, headers=auth, trust_env=False).json()
        latest = found["deployments"][-1]
        waits.add(str(latest["data"].get("waiting", "")).split(" (")[0])
        if latest["state"] == "done":
            break
        time.sleep(0.2)
    took = time.monotonic() - started
    print(f"\n[release phase in the background] release done in {took:.1f}s; waits seen: {sorted(waits)}")
    assert latest["outcome"] == "succeeded", latest
    assert "release command running" in waits
    # The loop kept passing while the 4 s command ran (it was never reported stalled).
    assert stalled == []
    assert len(set(passes)) >= 4, passes


def test_a_deploy_stopped_following_says_the_release_goes_on_and_it_does(rel: Sprout) -> None:
    set_manifest(rel.app_dir, 'test = "python check.py"', 'test = "python check.py"\nrelease = "sleep 3"')
    auth = {"Authorization": f"Bearer {rel.token()}"}

    def latest() -> dict[str, Any]:
        api = rel.daemon()["api_url"]
        found = httpx.get(api + "/v1/deployments", params={"app": APP}, headers=auth, trust_env=False)
        releases = found.json()["deployments"]
        return dict(releases[-1]) if releases else {"state": "none", "data": {}}

    started: list[subprocess.Popen[str]] = []

    def following(marker: str) -> subprocess.Popen[str]:
        """`sprout deploy` of a new version, once it follows the release's command."""
        new_version(rel, marker)
        # A terminal's Ctrl-C: under pytest-xdist the worker ignores SIGINT, and a child inherits that.
        ignored = signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            proc = cli(rel, "deploy", str(rel.app_dir), "--skip-tests")
        finally:
            signal.signal(signal.SIGINT, ignored)
        started.append(proc)
        deadline = time.monotonic() + 30
        while "release command running" not in str(latest()["data"].get("waiting")):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        return proc

    def done() -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while (found := latest())["state"] != "done":
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        return found

    try:
        # Ctrl-C: the command says the release goes on, and it does.
        proc = following("v2")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "relapp/production: stopped following; release " in err and "goes on in the daemon" in err, err
        assert done()["outcome"] == "succeeded"
        # The daemon killed: the command says how the release goes on; once restarted, it does.
        proc = following("v3")
        os.kill(int(rel.daemon()["pid"]), signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 4, err
        assert "the daemon stopped answering during release" in err and "`sprout daemon start`" in err, err
        rel.run("daemon", "start")
        assert done()["outcome"] == "succeeded"
        assert rel.environment(APP)["version"] == "v3"
    finally:
        # A deploy still running would start the daemon again after the fixture's cleanup.
        for proc in started:
            proc.kill()
            proc.wait(10)


def test_rollback_and_swap_start_a_stopped_daemon_as_deploy_does(rel: Sprout) -> None:
    new_version(rel, "v2")
    rel.run("deploy", str(rel.app_dir))
    # The daemon down: swap and rollback start it (it adopts what runs) and switch, as deploy would.
    rel.run("daemon", "stop")
    swapped = rel.run("swap", str(rel.app_dir))
    assert "traffic now on v1" in swapped.stdout, swapped.stdout + swapped.stderr
    rel.run("daemon", "stop")
    result = rel.run("rollback", str(rel.app_dir))
    assert "traffic is back on v2 (warm fleet, no launch)" in result.stdout, result.stdout + result.stderr
    # An environment the home does not record starts nothing.
    rel.run("daemon", "stop")
    missing = rel.run("rollback", str(rel.app_dir), "--env", "staging", check=False)
    assert missing.returncode == 2 and "relapp/staging: no such environment" in missing.stderr, missing.stderr
    assert not (rel.home / "run" / "daemon.json").exists()

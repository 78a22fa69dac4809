"""Live autoscaling with real processes: a burst scales the fleet out, idle scales it back, 0 failed requests.

The app (`apps/busy`) works 20 ms per request; its manifest tracks 5 requests per second per instance
between 1 and 3 instances with a 6 s scale-in window, so a ~30 req/s burst needs the maximum and a
2 req/s trickle needs one. A paced client counts every failed request while the fleet grows, drains and
shrinks; `sprout scale --min 2` must then hold the fleet at two and appear in `sprout history`, and a
`sprout scale --desired 3` must hold for one stabilization window before the idle fleet drains back.
After a blue/green release, with the old fleet kept warm for rollback, a burst must still grow the new one.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_kit import Sprout, kill_all, processes_of

from loopback import free_port

pytestmark = pytest.mark.slow

BUSY = Path(__file__).resolve().parent / "apps" / "busy"


class Trickle:
    """GETs through the router from two threads with a pause between requests, counting failures."""

    def __init__(self, port: int, pause: float, max_seconds: float = 80.0) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.pause = pause
        self.max_seconds = max_seconds
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def __enter__(self) -> Trickle:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=5, trust_env=False, headers={"Host": "busy.localhost"}) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = client.get(self.url)
                    if response.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed.append(f"HTTP {response.status_code}: {response.text[:100]}")
                except httpx.HTTPError as exc:
                    self.failed.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.pause)


@pytest.fixture
def busy(tmp_path: Path, shared_bundle_cache: Path, request: pytest.FixtureRequest) -> Iterator[Sprout]:
    """The busy app under a private home (on the engine a test asks for through `indirect`, else the
    default); `sprout down` and a kill of any leftover process at the end."""
    app = tmp_path / "app"
    shutil.copytree(BUSY, app, ignore=shutil.ignore_patterns("__pycache__"))
    engine = getattr(request, "param", None)
    instance = Sprout(home=tmp_path / "home", app_dir=app, port=free_port(), engine=engine)
    try:
        yield instance
    finally:
        if instance.home.exists():
            instance.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(instance.home))


def _env(sprout: Sprout) -> dict[str, Any]:
    return sprout.environment(app="busy")


def _wait(sprout: Sprout, timeout: float, what: str, ok: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = _env(sprout)
        if ok(found):
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout}s: {found}")


def _live(env: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in env["instances"] if i["state"] in ("launching", "running")]


def _serving(env: dict[str, Any]) -> tuple[str, int, int] | None:
    """The group taking all traffic: its version, capacity and healthy instances."""
    groups = [g for g in env["groups"] if g["weight"] > 0]
    if len(groups) != 1:
        return None
    group = groups[0]
    healthy = [
        i
        for i in env["instances"]
        if i["group"] == group["name"] and i["state"] == "running" and i["health"] == "healthy"
    ]
    return group["version"], group["capacity"], len(healthy)


def _scale_events(sprout: Sprout) -> list[dict[str, Any]]:
    return [e for e in _events(sprout) if e["kind"] == "scale"]


def _events(sprout: Sprout) -> list[dict[str, Any]]:
    daemon = sprout.daemon()
    response = httpx.get(
        daemon["api_url"] + "/v1/events",
        params={"app": "busy", "env": "production", "limit": "1000"},
        headers={"Authorization": f"Bearer {sprout.token()}"},
        trust_env=False,
    )
    return list(response.json()["events"])


# A load generator whose rates drive the scaling: not beside the other load generators.
@pytest.mark.xdist_group("serial")
@pytest.mark.parametrize("busy", ["sprout", "haproxy"], indirect=True)
def test_burst_scales_out_idle_scales_in_without_errors_and_scale_min_is_honoured(busy: Sprout) -> None:
    busy.up()
    _wait(busy, 20, "one healthy instance", lambda e: e["healthy"] == 1 and e["desired"] == 1)

    with Trickle(busy.port, pause=0.0) as load:
        # ~30-60 req/s against a target of 5 per instance: the fleet goes to its maximum, 3.
        out = _wait(busy, 30, "scale-out to 3 healthy", lambda e: e["desired"] == 3 and e["healthy"] == 3)
        assert len(_live(out)) == 3
        assert {i["zone"] for i in out["instances"]} == {"a", "b"}
        # Idle (2 req/s): after the 6 s window the fleet drains back to 1 while requests keep arriving.
        load.pause = 1.0
        served_out = load.ok
        back = _wait(busy, 40, "scale-in to 1", lambda e: e["desired"] == 1 and len(_live(e)) == 1)
        assert back["healthy"] == 1
        time.sleep(1.0)
    assert load.failed == [], load.failed[:5]
    assert served_out > 20 and load.ok - served_out >= 5, (served_out, load.ok)

    events = _scale_events(busy)
    grew = [e for e in events if e["data"]["desired"] > 1]
    assert grew, events
    first = grew[0]
    assert first["data"]["policy"] in ("target_tracking", "limits")  # "limits": capped at max
    assert "requests_per_instance" in first["message"] and "1 →" in first["message"], first["message"]
    shrink = events[-1]
    assert shrink["data"]["desired"] == 1
    assert "→ 1" in shrink["message"], shrink["message"]
    # No flapping: one way out (possibly in a couple of steps), one way back in.
    desired = [e["data"]["desired"] for e in events]
    turns = sum(
        1 for a, b, c in zip(desired, desired[1:], desired[2:], strict=False) if (b - a) * (c - b) < 0
    )
    assert turns <= 1, desired

    # An operator raises the floor: the fleet goes to 2 and stays there while idle; it is in the history.
    scaled = busy.run("scale", str(busy.app_dir), "--min", "2")
    assert "instances.min: 1 → 2" in scaled.stdout, scaled.stdout
    _wait(busy, 20, "fleet at 2", lambda e: e["desired"] == 2 and e["healthy"] == 2 and len(_live(e)) == 2)
    time.sleep(3.0)
    held = _env(busy)
    assert held["desired"] == 2 and len(_live(held)) == 2
    history = json.loads(busy.run("history", str(busy.app_dir), "--json").stdout)
    entries = [h for h in history if h["action"] == "scale"]
    assert entries and "instances.min: 1 → 2" in entries[-1]["diff_text"], history
    # A capacity above the bounds is refused, not quietly cut to max.
    refused = busy.run("scale", str(busy.app_dir), "--desired", "99", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "scale: --desired 99 is outside min 2 .. max" in refused.stderr and "--max 99" in refused.stderr
    assert _env(busy)["desired"] == 2

    # A capacity set by hand is kept for one stabilization window (6 s), then the idle fleet drains
    # back to its floor of 2, again without a failed request.
    with Trickle(busy.port, pause=1.0) as trickle:
        busy.run("scale", str(busy.app_dir), "--desired", "3")
        _wait(busy, 20, "fleet at 3", lambda e: e["desired"] == 3 and e["healthy"] == 3)
        _wait(busy, 30, "back to 2", lambda e: e["desired"] == 2 and len(_live(e)) == 2)
    assert trickle.failed == [] and trickle.ok > 0, trickle.failed[:5]
    events = _events(busy)
    by_hand = [e for e in events if e["kind"] == "capacity" and "sprout scale" in e["message"]][-1]
    undone = [e for e in events if e["kind"] == "scale" and "desired capacity 3 → 2" in e["message"]][-1]
    assert undone["time"] - by_hand["time"] >= 5.0, (by_hand, undone)

    # After a blue/green release (the old fleet kept warm for rollback) a burst still grows the new fleet.
    with open(busy.app_dir / "busy" / "__init__.py", "a", encoding="utf-8") as source:
        source.write("# v2\n")
    busy.run("deploy", str(busy.app_dir), "--strategy", "bluegreen", "--skip-tests")
    with Trickle(busy.port, pause=0.0) as burst:
        grown = _wait(busy, 30, "v2 fleet at 3", lambda e: _serving(e) == ("v2", 3, 3))
    assert burst.failed == [], burst.failed[:5]
    standby = [g for g in grown["groups"] if g["weight"] == 0]
    assert [(g["version"], g["capacity"]) for g in standby] == [("v1", 2)], grown["groups"]

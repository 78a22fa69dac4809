"""Issue 13 point 4: `[health]` durations below their floors and repeated host names are refused up front,
each with its exact message (field, problem, fix); values at the floors are accepted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sprout.errors import ManifestError
from sprout.spec import load_manifest, parse_manifest
from sprout.spec.models import HEALTH_FLOORS
from sprout.state import StateStore

APP = '[app]\nname = "shop"\nweb = "run"\n'
TIMEOUT = (
    "health.timeout: {got} is below the minimum of 100ms (a shorter check fails whenever the instance pauses "
    'for a moment); set timeout = "100ms" or more'
)
INTERVAL = (
    "health.interval: {got} is below the minimum of 250ms (shorter intervals spend the router's CPU on health "
    'checks); set interval = "250ms" or more'
)
GRACE = (
    "health.grace: {got} is below the minimum of 1s (a shorter grace replaces every new instance before it "
    'can start); set grace = "1s" or more'
)

# (case id, [health] lines, the exact errors after "<file>: ")
BELOW: list[tuple[str, str, list[str]]] = [
    ("timeout zero", 'timeout = "0s"', [TIMEOUT.format(got="0s")]),
    ("timeout 99ms", 'timeout = "99ms"', [TIMEOUT.format(got="99ms")]),
    ("timeout as a number", "timeout = 0.05", [TIMEOUT.format(got="50ms")]),
    (
        "interval 1ms",
        'interval = "1ms"\ntimeout = "1ms"',
        [INTERVAL.format(got="1ms"), TIMEOUT.format(got="1ms")],
    ),
    ("interval 249ms", 'interval = "249ms"\ntimeout = "100ms"', [INTERVAL.format(got="249ms")]),
    ("grace zero", 'grace = "0s"', [GRACE.format(got="0s")]),
    ("grace 999ms", 'grace = "999ms"', [GRACE.format(got="999ms")]),
    (
        "all three",
        'interval = "0s"\ntimeout = "0s"\ngrace = "0s"',
        [INTERVAL.format(got="0s"), TIMEOUT.format(got="0s"), GRACE.format(got="0s")],
    ),
    (
        "timeout above interval at the floor",
        'interval = "250ms"\ntimeout = "300ms"',
        ["health: timeout (0.3s) must not exceed interval (0.25s)"],
    ),
]


@pytest.mark.parametrize(("case", "lines", "expected"), BELOW, ids=[case for case, _, _ in BELOW])
def test_below_the_floor_is_refused_with_field_and_fix(
    tmp_path: Path, case: str, lines: str, expected: list[str]
) -> None:
    path = tmp_path / "sprout.toml"
    path.write_text(APP + "[health]\n" + lines + "\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == expected
    assert str(caught.value) == "\n".join(f"{path}: {line}" for line in expected)
    assert caught.value.exit_code == 2


def test_the_floors_themselves_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "sprout.toml").write_text(
        APP + '[health]\ninterval = "250ms"\ntimeout = "100ms"\ngrace = "1s"\n'
    )
    health = load_manifest(tmp_path).health
    assert (health.interval, health.timeout, health.grace) == (0.25, 0.1, 1.0)
    assert {name: floor for name, (floor, _) in HEALTH_FLOORS.items()} == {
        "timeout": 0.1,
        "interval": 0.25,
        "grace": 1.0,
    }


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        ('["shop.localhost", "shop.localhost"]', '"shop.localhost" is listed more than once'),
        (
            '["*.shop.localhost", "a.localhost", "*.shop.localhost"]',
            '"*.shop.localhost" is listed more than once',
        ),
    ],
)
def test_a_host_listed_twice_is_refused(tmp_path: Path, hosts: str, expected: str) -> None:
    path = tmp_path / "sprout.toml"
    path.write_text(APP + f"[router]\nhosts = {hosts}\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == [f"router.hosts: {expected}; list each host name once"]


def test_an_environment_stored_before_the_floors_is_read_at_them(tmp_path: Path) -> None:
    """A manifest recorded by an older Sprout keeps its environment running: read at the floors."""
    path = tmp_path / "sprout.toml"
    path.write_text(APP + '[health]\ninterval = "1s"\ntimeout = "100ms"\ngrace = "30s"\n')
    store = StateStore(tmp_path / "state.db")
    env = store.upsert_environment("shop", "production", load_manifest(path), tmp_path)
    old = env.manifest_json.replace('"interval": 1.0', '"interval": 0.001').replace(
        '"grace": 30.0', '"grace": 0.0'
    )
    assert old != env.manifest_json
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE environments SET manifest_json = ? WHERE id = ?", (old, env.id))
    stored = store.get_environment("shop", "production")
    assert stored is not None
    health = stored.manifest.health
    assert (health.interval, health.timeout, health.grace) == (0.25, 0.1, 1.0)
    with pytest.raises(ManifestError, match=r"health\.interval: 1ms is below the minimum of 250ms"):
        parse_manifest(json.loads(old))

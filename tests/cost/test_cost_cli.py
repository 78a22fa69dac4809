"""`sprout cost`, run as a real process on instance lifetimes recorded in a real state store.

The lifetimes are written at controlled timestamps (5 minutes of a fixed fleet, a blue/green release,
a fleet gone down) instead of waiting for them; the CLI reads them exactly as it reads a live daemon's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sprout.spec import parse_manifest
from sprout.state import StateStore

PRICE = 0.024  # the default price of a small instance-hour
MANIFEST = parse_manifest(
    {"app": {"name": "shop", "web": "python app.py"}, "instances": {"min": 2, "max": 10}}
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path, tmp_path: Path) -> StateStore:
    store = StateStore(home / "state.db")
    store.upsert_environment("shop", "production", MANIFEST, tmp_path)
    store.add_version("shop", "a" * 64, 1, MANIFEST)
    store.add_version("shop", "b" * 64, 1, MANIFEST)
    store.set_current_version("shop", "production", "v1")
    store.set_desired_capacity("shop", "production", 2, "up")
    return store


def cost(home: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "sprout", "cost", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def launch(store: StateStore, version: str, zone: str, started_at: float) -> str:
    instance = store.add_instance(
        "shop", "production", version, zone, "127.0.0.1", 1, started_at=started_at, state="running"
    )
    return instance.id


def stop(home: Path, instance_id: str, at: float) -> None:
    with sqlite3.connect(home / "state.db") as conn:
        conn.execute("UPDATE instances SET state = 'stopped', stopped_at = ? WHERE id = ?", (at, instance_id))


def hours_left_in_month(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following.timestamp() - now) / 3600.0


def test_five_minutes_of_a_fixed_fleet_project_the_rate_over_the_month_left_and_save_nothing(
    home: Path, store: StateStore
) -> None:
    now = time.time()
    for zone in ("a", "b"):
        launch(store, "v1", zone, now - 300)
    bill = cost(home)
    rate = 2 * PRICE
    expected = rate * hours_left_in_month(now)
    assert bill["rate_per_hour"] == pytest.approx(rate)
    assert abs(bill["projected_month"] - expected) <= 0.10 * expected, (bill["projected_month"], expected)
    assert bill["spend"] == pytest.approx(2 * 300 / 3600 * PRICE, rel=0.05)
    assert bill["savings"] == 0.0
    assert bill["peaks"] == [{"app": "shop", "env": "production", "size": "small", "instances": 2}]


def test_a_blue_green_release_adds_no_savings(home: Path, store: StateStore) -> None:
    now = time.time()
    blue = [launch(store, "v1", zone, now - 900) for zone in ("a", "b")]
    for zone in ("a", "b"):
        launch(store, "v2", zone, now - 600)
    for instance_id in blue:  # the warm fleet kept 5 minutes for a rollback, then retired
        stop(home, instance_id, now - 300)
    bill = cost(home)
    assert bill["savings"] == 0.0
    assert bill["peaks"] == [{"app": "shop", "env": "production", "size": "small", "instances": 2}]
    # the 5 minutes of two extra instances are spend above desired capacity
    assert bill["above_desired_spend"] == pytest.approx(2 * 300 / 3600 * PRICE, rel=0.05)
    # the projection's rate is what was observed since the environment came up, overlap included:
    # (2 x 10 min of v1 + 2 x 10 min of v2) over the 15 minutes since v1 started
    assert bill["rate_per_hour"] == pytest.approx((2 * 600 + 2 * 600) / 900 * PRICE, rel=0.05)


def test_nothing_is_projected_once_everything_is_down(home: Path, store: StateStore) -> None:
    now = time.time()
    for zone in ("a", "b"):
        stop(home, launch(store, "v1", zone, now - 600), now - 300)
    bill = cost(home)
    assert bill["rate_per_hour"] == 0.0
    assert bill["projected_month"] == pytest.approx(bill["month_spend"])
    assert bill["month_spend"] <= bill["spend"] + 1e-9

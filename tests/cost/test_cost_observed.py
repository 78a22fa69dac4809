"""`sprout cost` reads lifetimes, load and settings from the state store and bills them as computed by hand."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sprout.cli.main import load_commands
from sprout.cost import observed
from sprout.spec import parse_manifest
from sprout.state import StateStore
from sprout.state.models import LoadHour

MANIFEST = parse_manifest(
    {
        "app": {"name": "shop", "web": "python app.py"},
        "instances": {"size": "medium", "min": 2},
        "cost": {"currency": "EUR", "prices": {"medium": 0.5}},
    }
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateStore:
    monkeypatch.setenv("SPROUT_HOME", str(tmp_path / "home"))
    store = StateStore(tmp_path / "home" / "state.db")
    store.upsert_environment("shop", "production", MANIFEST, tmp_path)
    store.add_version("shop", "a" * 64, 1, MANIFEST)
    return store


def test_lifetimes_come_from_instances_with_their_version_size(store: StateStore) -> None:
    now = time.time()
    running = store.add_instance("shop", "production", "v1", "a", "127.0.0.1", 1, started_at=now - 7200)
    gone = store.add_instance("shop", "production", "v1", "b", "127.0.0.1", 2, started_at=now - 3600)
    stopped = store.update_instance(gone.id, state="stopped")
    found = {life.instance_id: life for life in observed.lifetimes(store)}
    assert found[running.id].end is None and found[running.id].size == "medium"
    assert found[gone.id].end == stopped.stopped_at
    assert found[gone.id].start == now - 3600


def test_the_bill_of_known_lifetimes(store: StateStore) -> None:
    now = time.time()
    store.add_instance("shop", "production", "v1", "a", "127.0.0.1", 1, started_at=now - 2 * 3600)
    store.add_instance("shop", "production", "v1", "b", "127.0.0.1", 2, started_at=now - 3600)
    result = CliRunner().invoke(load_commands("cost"), ["cost", "--json"])
    assert result.exit_code == 0, result.output
    bill = json.loads(result.stdout)  # the home-tightening notice goes to stderr
    # 2 h + 1 h of a medium instance at 0.5 EUR/h
    assert bill["currency"] == "EUR"
    assert bill["spend"] == pytest.approx(1.5, abs=1e-3)


def test_observed_hours_and_settings_feed_the_advice(store: StateStore) -> None:
    store.add_load(LoadHour("shop", "production", 3600.0, 3600, 36_000, 25.0, 0.08, 7200.0))
    (hour,) = observed.hourly(store)
    assert (hour.requests_per_second, hour.peak_requests_per_second, hour.instances) == (10.0, 25.0, 2.0)
    (setting,) = observed.settings(store)
    assert (setting.size, setting.minimum, setting.target, setting.slo_p99) == ("medium", 2, 50.0, 0.5)


def test_each_app_is_priced_by_its_own_manifest(store: StateStore, tmp_path: Path) -> None:
    other = parse_manifest(
        {
            "app": {"name": "lottery", "web": "python app.py"},
            "cost": {"currency": "EUR", "prices": {"small": 0.1}},
        }
    )
    store.upsert_environment("lottery", "production", other, tmp_path)  # applied last
    pricing = observed.pricing(store)
    assert pricing.hourly("shop", "medium") == 0.5
    assert pricing.hourly("lottery", "small") == 0.1
    assert pricing.hourly("lottery", "medium") == 0.048  # the default table under its own overrides


def test_desired_capacity_over_time_comes_from_the_capacity_decisions(store: StateStore) -> None:
    store.set_desired_capacity("shop", "production", 5, "scale-out")
    store.set_desired_capacity("shop", "production", 3, "scale-in")
    changes = store.list_events("shop", "production", kind="capacity")
    desired = observed.desired(store)[("shop", "production")]
    assert desired.initial == 2
    assert desired.changes == ((changes[0].time, 5), (changes[1].time, 3))
    assert desired.at(changes[0].time - 1) == 2 and desired.at(changes[1].time) == 3

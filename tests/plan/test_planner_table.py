"""The planner on a table of cases: (recorded manifest, new manifest, running fleet, version) → diff lines."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sprout.plan import (
    CreateEnvironment,
    Noop,
    SetCapacity,
    SetVersion,
    UpdateRoutes,
    UpdateSettings,
    plan,
    spread,
)
from sprout.spec import parse_manifest
from sprout.state import Environment, Instance, Version
from sprout.state.models import Group

BASE: dict[str, Any] = {"app": {"name": "shop", "web": "run"}}


def with_(**sections: dict[str, Any]) -> dict[str, Any]:
    return {**BASE, **sections}


def environment(manifest: dict[str, Any], version: str | None = "v1", desired: int = 2) -> Environment:
    parsed = parse_manifest(manifest)
    return Environment(
        id="shop/production",
        app="shop",
        name="production",
        manifest_json=json.dumps(parsed.model_dump(mode="json")),
        manifest_hash=parsed.digest(),
        app_dir=Path("/srv/shop"),
        current_version=version,
        desired_capacity=desired,
        status="created",
        created_at=0.0,
        updated_at=0.0,
    )


def fleet(*zones: str, state: str = "running") -> list[Instance]:
    return [
        Instance(
            f"i-{n:010x}",
            "shop",
            "production",
            "v1",
            zone,
            "127.0.0.1",
            41000 + n,
            None,
            None,
            state,
            "healthy",
            None,
            0.0,
            0.0,
        )  # type: ignore[arg-type]
        for n, zone in enumerate(zones)
    ]


def version(label: str) -> Version:
    return Version("shop", label, label[1:] * 64, 100, json.dumps(BASE), None, 0.0)


# (case, recorded: (manifest, version, desired) | None, new manifest, running zones, version to run, diff lines)
CASES: list[
    tuple[
        str, tuple[dict[str, Any], str | None, int] | None, dict[str, Any], list[str], str | None, list[str]
    ]
] = [
    (
        "first apply of the two-line manifest",
        None,
        BASE,
        [],
        "v1",
        [
            "+ environment shop/production",
            "+ version: v1",
            "+ instances in zone a: 0 → 1",
            "+ instances in zone b: 0 → 1",
            "+ routes: shop.localhost",
        ],
    ),
    (
        "first apply before anything was pushed",
        None,
        with_(instances={"min": 1, "zones": ["a"]}),
        [],
        None,
        ["+ environment shop/production", "+ instances in zone a: 0 → 1", "+ routes: shop.localhost"],
    ),
    (
        "nothing changed",
        (BASE, "v1", 2),
        BASE,
        ["a", "b"],
        "v1",
        [
            "no changes: shop/production already matches shop's manifest "
            f"(manifest {parse_manifest(BASE).digest()[:12]}, v1, 2 instances across zones a, b)"
        ],
    ),
    (
        "health interval shortened",
        (BASE, "v1", 2),
        with_(health={"interval": "1s", "timeout": "500ms"}),
        ["a", "b"],
        "v1",
        ["~ health.interval: 2s → 1s", "~ health.timeout: 1s → 500ms"],
    ),
    (
        "new version",
        (BASE, "v1", 2),
        BASE,
        ["a", "b"],
        "v2",
        ["~ version: v1 → v2"],
    ),
    (
        "third zone added",
        (BASE, "v1", 2),
        with_(instances={"min": 3, "zones": ["a", "b", "c"]}),
        ["a", "b"],
        "v1",
        [
            "~ instances.min: 2 → 3",
            '~ instances.zones: ["a", "b"] → ["a", "b", "c"]',
            "+ instances in zone c: 0 → 1",
        ],
    ),
    (
        "zone removed",
        (with_(instances={"min": 2, "zones": ["a", "b"]}), "v1", 2),
        with_(instances={"min": 2, "zones": ["a"]}),
        ["a", "b"],
        "v1",
        [
            '~ instances.zones: ["a", "b"] → ["a"]',
            "+ instances in zone a: 1 → 2",
            "- instances in zone b: 1 → 0",
        ],
    ),
    (
        "instance died: the fleet is short in zone b",
        (BASE, "v1", 2),
        BASE,
        ["a"],
        "v1",
        ["+ instances in zone b: 0 → 1"],
    ),
    (
        "stopped and draining instances do not count",
        (BASE, "v1", 2),
        BASE,
        ["a"],
        "v1",
        ["+ instances in zone b: 0 → 1"],
    ),
    (
        "the scaler's capacity is kept within the new bounds",
        (BASE, "v1", 6),
        with_(instances={"max": 4}),
        ["a", "a", "a", "b", "b", "b"],
        "v1",
        ["~ instances.max: 10 → 4", "- instances in zone a: 3 → 2", "- instances in zone b: 3 → 2"],
    ),
    (
        "the scaler's capacity survives an unrelated change",
        (BASE, "v1", 4),
        with_(deploy={"strategy": "bluegreen"}),
        ["a", "a", "b", "b"],
        "v1",
        ['~ deploy.strategy: "rolling" → "bluegreen"'],
    ),
    (
        "a changed desired wins",
        (BASE, "v1", 2),
        with_(instances={"desired": 5}),
        ["a", "b"],
        "v1",
        ["~ instances.desired: (unset) → 5", "+ instances in zone a: 1 → 3", "+ instances in zone b: 1 → 2"],
    ),
    (
        "env variable added and removed",
        (with_(env={"OLD": "1"}), "v1", 2),
        with_(env={"NEW": "2"}),
        ["a", "b"],
        "v1",
        ['+ env.NEW = "2"', '- env.OLD (was "1")'],
    ),
    (
        "secret reference changed (never a value)",
        (with_(secrets={"KEY": "env:A"}), "v1", 2),
        with_(secrets={"KEY": "file:key.txt"}),
        ["a", "b"],
        "v1",
        ['~ secrets.KEY.env: "A" → (unset)', '~ secrets.KEY.file: (unset) → "key.txt"'],
    ),
    (
        "hosts changed",
        (BASE, "v1", 2),
        with_(router={"hosts": ["shop.example.com", "www.shop.example.com"]}),
        ["a", "b"],
        "v1",
        ["~ routes: shop.localhost → shop.example.com, www.shop.example.com"],
    ),
    (
        "default host spelt out is a setting, not a route change",
        (BASE, "v1", 2),
        with_(router={"hosts": ["shop.localhost"]}),
        ["a", "b"],
        "v1",
        ['~ router.hosts: [] → ["shop.localhost"]'],
    ),
    (
        "managed memcached sessions",
        (BASE, "v1", 2),
        with_(resources={"sessions": {"engine": "memcached"}}),
        ["a", "b"],
        "v1",
        [
            '~ resources.sessions.engine: "sqlite" → "memcached"',
            "+ memcached node in zone a",
            "+ memcached node in zone b",
        ],
    ),
    (
        "external memcached needs no node",
        (with_(resources={"sessions": {"engine": "memcached"}}), "v1", 2),
        with_(resources={"sessions": {"engine": "memcached", "url": "memcached://10.0.0.5:11211"}}),
        ["a", "b"],
        "v1",
        [
            '~ resources.sessions.url: (unset) → "memcached://10.0.0.5:11211"',
            "- memcached node in zone a",
            "- memcached node in zone b",
        ],
    ),
    (
        "schedule added",
        (BASE, "v1", 2),
        with_(scaling={"schedule": [{"cron": "30 19 * 6 *", "min": 8}]}),
        ["a", "b"],
        "v1",
        ['~ scaling.schedule: [] → [{"cron": "30 19 * 6 *", "min": 8}]'],
    ),
    (
        "scale to zero",
        (with_(instances={"min": 0}), "v1", 2),
        with_(instances={"min": 0, "desired": 0}),
        ["a", "b"],
        "v1",
        ["~ instances.desired: (unset) → 0", "- instances in zone a: 1 → 0", "- instances in zone b: 1 → 0"],
    ),
]


@pytest.mark.parametrize(
    ("case", "recorded", "manifest", "running", "label", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_plan_table(
    case: str,
    recorded: tuple[dict[str, Any], str | None, int] | None,
    manifest: dict[str, Any],
    running: list[str],
    label: str | None,
    expected: list[str],
) -> None:
    current = environment(*recorded) if recorded else None
    observed = fleet(*running)
    if case == "stopped and draining instances do not count":
        observed += fleet("b", state="stopped") + fleet("b", state="draining")
    result = plan(
        parse_manifest(manifest),
        Path("/srv/shop"),
        "production",
        current,
        observed,
        version(label) if label else None,
    )
    assert result.describe() == expected
    assert result.is_empty == expected[0].startswith("no changes")


def test_plan_is_data() -> None:
    result = plan(parse_manifest(BASE), Path("/srv/shop"), "production", None, [], version("v1"))
    assert result.actions == (
        CreateEnvironment("shop", "production"),
        SetVersion(None, "v1"),
        SetCapacity("a", 0, 1),
        SetCapacity("b", 0, 1),
        UpdateRoutes((), ("shop.localhost",)),
    )
    assert (result.kind, result.desired_capacity) == ("create", 2)
    with pytest.raises(AttributeError):
        result.actions[1].new = "v2"  # type: ignore[misc, union-attr]
    changed = plan(
        parse_manifest(with_(health={"path": "/healthz"})),
        Path("/srv/shop"),
        "production",
        environment(BASE),
        fleet("a", "b"),
        version("v1"),
    )
    assert changed.actions == (UpdateSettings("health.path", '"/"', '"/healthz"'),)
    assert changed.kind == "update"
    same = plan(
        parse_manifest(BASE), Path("/srv/shop"), "production", environment(BASE), fleet("a", "b"), None
    )
    assert isinstance(same.actions[0], Noop) and same.kind == "none"


@pytest.mark.parametrize(
    ("total", "zones", "expected"),
    [
        (0, ["a", "b"], {"a": 0, "b": 0}),
        (3, ["a", "b"], {"a": 2, "b": 1}),
        (5, ["a", "b", "c"], {"a": 2, "b": 2, "c": 1}),
    ],
)
def test_spread(total: int, zones: list[str], expected: dict[str, int]) -> None:
    assert spread(total, zones) == expected


def test_a_warm_fleet_is_not_counted_and_is_noted() -> None:
    # After a blue/green release: green (v2) serves 2, blue (v1) is kept warm at weight 0 until 14:05.
    serving = [replace(i, version="v2", group_name="green") for i in fleet("a", "b")]
    kept = [replace(i, id=f"i-warm{n:06x}", group_name="blue") for n, i in enumerate(fleet("a", "b"))]
    warm = Group("blue", "v1", 2, 0, standby_until=1_000_000.0)
    result = plan(
        parse_manifest(BASE),
        Path("/srv/shop"),
        "production",
        environment(BASE, "v2"),
        serving + kept,
        version("v2"),
        [warm],
    )
    assert result.is_empty
    assert result.describe()[0].startswith("no changes: shop/production already matches shop's manifest")
    until = time.strftime("%H:%M:%S", time.localtime(1_000_000.0))
    assert result.notes == (
        f"warm fleet blue: 2 instance(s) of v1 kept for rollback until {until}, then retired (not counted above)",
    )


def test_a_new_secret_shows_no_unset_sources_and_a_release_and_resources_are_named() -> None:
    recorded = with_(app={"name": "shop", "web": "python app.py", "release": "python -m migrate"})
    changed = with_(
        app={"name": "shop", "web": "python app.py", "release": "python -m migrate"},
        secrets={"KEY": "env:A"},
        resources={
            "sessions": {"engine": "memcached"},
            "database": {"engine": "mysql", "url": "mysql://db:3306/shop"},
        },
    )
    result = plan(
        parse_manifest(changed),
        Path("/srv/shop"),
        "production",
        environment(recorded, "v1"),
        fleet("a", "b"),
        version("v2"),
    )
    described = result.describe()
    assert '+ secrets.KEY.env = "A"' in described
    assert [line for line in described if line.startswith(("+ secrets", "~ secrets"))] == [
        '+ secrets.KEY.env = "A"'
    ]
    assert result.notes == (
        "release command `python -m migrate` runs once for v2 before it takes traffic",
        "database: mysql at mysql://db:3306/shop, external",
        "sessions: memcached, one node in each of zones a, b, started by Sprout",
    )
    unchanged = plan(
        parse_manifest(recorded),
        Path("/srv/shop"),
        "production",
        environment(recorded, "v1"),
        fleet("a", "b"),
        version("v1"),
    )
    assert unchanged.notes == ()

"""The reconcile pass, table by table: a real state store, a fake provider and router at the boundary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sprout.controlplane.reconcile import Reconciler
from sprout.errors import ServiceError
from sprout.providers.base import ObservedInstance
from sprout.router.table import parse_table, table_to_dict
from sprout.spec import parse_manifest
from sprout.state import Environment, Instance, StateStore
from sprout.state.models import Group


class FakeProvider:
    """Processes as a dict: launch adds one, `exit()` makes one exit, stop removes it."""

    name = "fake"

    def __init__(self) -> None:
        self.processes: dict[str, ObservedInstance] = {}
        self.stopped: list[str] = []
        self._pid = 1000

    def start(self, instance: Instance) -> ObservedInstance:
        self._pid += 1
        process = ObservedInstance(
            instance.id,
            self._pid,
            float(self._pid),
            "running",
            instance.host,
            instance.port,
            instance.zone,
            instance.version,
        )
        self.processes[instance.id] = process
        return process

    def exit(self, instance_id: str) -> None:
        p = self.processes[instance_id]
        self.processes[instance_id] = ObservedInstance(
            p.instance_id, p.pid, p.started_at, "exited", p.host, p.port, p.zone, p.version
        )

    def observe(self) -> list[ObservedInstance]:
        return list(self.processes.values())

    def stop(self, instance_id: str, grace: float) -> None:
        if self.processes.pop(instance_id, None) is not None:
            self.stopped.append(instance_id)


class FakeLauncher:
    """Records the instance and starts it in the fake provider, as the real launcher does."""

    def __init__(self, store: StateStore, provider: FakeProvider) -> None:
        self.store = store
        self.provider = provider
        self.port = 20000

    def launch(self, env: Environment, version: str, zone: str, group: str) -> Instance:
        self.port += 1
        instance = self.store.add_instance(
            env.app, env.name, version, zone, "127.0.0.1", self.port, group_name=group
        )
        process = self.provider.start(instance)
        return self.store.update_instance(instance.id, pid=process.pid, started_at=process.started_at)


class NoServices:
    """Environments without managed services; those named in `failing` cannot get theirs."""

    def __init__(self) -> None:
        self.failing: set[str] = set()

    def sync(self, app: str, env: str, manifest: object) -> None:
        if env in self.failing:
            raise ServiceError("sessions: memcached failed to start")


class FakeRouter:
    """Keeps the pushed table; health is whatever the test says."""

    def __init__(self) -> None:
        self.table: dict[str, Any] = {"routes": []}
        self.healthy: dict[str, bool] = {}
        self.pushes = 0

    def get_table(self) -> dict[str, Any]:
        return self.table

    def put_table(self, table: dict[str, Any]) -> dict[str, Any]:
        self.table = table
        self.pushes += 1
        return table

    def health(self) -> dict[str, Any]:
        targets = {
            t["id"]: {
                "state": "healthy" if self.healthy.get(t["id"]) else "unhealthy",
                "healthy": bool(self.healthy.get(t["id"])),
            }
            for route in self.table["routes"]
            for group in route["groups"]
            for t in group["targets"]
            if t["id"] in self.healthy
        }
        return {"routes": {"r": {"groups": {"blue": {"targets": targets}}}}}

    def wait_drained(self, target_id: str, timeout: float) -> bool:
        return True

    def targets(self) -> list[str]:
        return [t["id"] for r in self.table["routes"] for g in r["groups"] for t in g["targets"]]


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.store = StateStore(tmp_path / "state.db")
        self.provider = FakeProvider()
        self.router = FakeRouter()
        self.services = NoServices()
        self.now = 1000.0
        self.reconciler = Reconciler(
            self.store,
            self.provider,
            FakeLauncher(self.store, self.provider),
            self.services,
            lambda: self.router,
            clock=lambda: self.now,
        )

    def env(
        self, name: str = "production", min_: int = 2, zones: list[str] | None = None, **extra: Any
    ) -> None:
        manifest = parse_manifest(
            {
                "app": {"name": "hello", "web": "python -m hello"},
                "instances": {"min": min_, "max": 10, "zones": zones or ["a", "b"]},
                "health": {"grace": "30s"},
                **extra,
            }
        )
        self.store.upsert_environment("hello", name, manifest, Path("/srv/hello"))
        version = self.store.add_version(
            "hello", f"{len(self.store.list_versions('hello')):064d}", 10, manifest
        )
        self.store.set_current_version("hello", name, version.label)

    def pass_(self) -> None:
        self.reconciler.run_once()
        self.reconciler.wait_retired(5)

    def live(self, env: str = "production") -> list[Instance]:
        return self.store.list_instances("hello", env, states=("launching", "running"))

    def all_healthy(self) -> None:
        for instance in self.live():
            self.router.healthy[instance.id] = True

    def kinds(self) -> Counter[str]:
        return Counter(e.kind for e in self.store.list_events(limit=1000))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_launches_the_desired_fleet_spread_across_zones(world: World) -> None:
    world.env(min_=4, zones=["a", "b", "c"])
    world.pass_()
    live = world.live()
    assert len(live) == 4
    assert sorted(Counter(i.zone for i in live).values()) == [1, 1, 2]
    assert sorted(world.router.targets()) == sorted(i.id for i in live)
    world.pass_()
    assert len(world.live()) == 4


def test_health_from_the_router_moves_instances_to_running(world: World) -> None:
    world.env()
    world.pass_()
    world.all_healthy()
    world.pass_()
    assert {(i.state, i.health) for i in world.live()} == {("running", "healthy")}
    assert world.kinds()["instance.healthy"] == 2
    table_targets = world.router.table["routes"][0]["groups"][0]["targets"]
    assert all(t["healthy"] for t in table_targets)


def test_a_second_pass_with_nothing_changed_pushes_nothing(world: World) -> None:
    world.env()
    world.pass_()
    world.all_healthy()
    world.pass_()
    pushes, events = world.router.pushes, len(world.store.list_events(limit=1000))
    world.pass_()
    world.pass_()
    assert world.router.pushes == pushes
    assert len(world.store.list_events(limit=1000)) == events


def test_an_exited_instance_is_replaced_in_its_zone(world: World) -> None:
    world.env()
    world.pass_()
    world.all_healthy()
    world.pass_()
    victim = world.live()[0]
    world.provider.exit(victim.id)
    world.pass_()
    live = world.live()
    assert victim.id not in {i.id for i in live}
    assert len(live) == 2
    assert sorted(i.zone for i in live) == ["a", "b"]
    assert world.store.get_instance(victim.id).state == "failed"
    assert victim.id not in world.router.targets()
    assert world.kinds()["instance.exited"] == 1


def test_an_instance_never_healthy_after_its_grace_is_replaced(world: World) -> None:
    world.env()
    world.pass_()
    first = {i.id for i in world.live()}
    world.now = max(i.started_at or 0 for i in world.live()) + 31
    world.pass_()
    assert world.kinds()["instance.replace"] == 2
    assert all(world.store.get_instance(i).state == "stopped" for i in first)
    assert set(world.provider.stopped) == first


def test_crash_loops_back_off(world: World) -> None:
    world.env(min_=1, zones=["a"])
    world.pass_()
    for _ in range(3):
        for instance in world.live():
            world.provider.exit(instance.id)
        world.pass_()
    # Each death before health doubles the wait; with the clock frozen only the first relaunch happened.
    assert world.kinds()["instance.exited"] == 1
    assert len(world.live()) == 0
    world.now += 1.5
    world.pass_()
    assert len(world.live()) == 1


def test_surplus_is_drained_from_the_fullest_zone(world: World) -> None:
    world.env(min_=3)
    world.pass_()
    world.all_healthy()
    world.pass_()
    world.store.set_desired_capacity("hello", "production", 2, "test")
    world.pass_()
    live = world.live()
    assert len(live) == 2
    assert sorted(i.zone for i in live) == ["a", "b"]
    assert world.kinds()["instance.scale_in"] == 1


def test_orphans_are_stopped(world: World) -> None:
    world.env()
    world.pass_()
    stray = world.store.add_instance("ghost", "production", "v1", "a", "127.0.0.1", 1)
    world.provider.start(stray)
    world.store.update_instance(stray.id, state="stopped")
    unknown = Instance(
        "i-0000000000", "x", "y", "v1", "a", "127.0.0.1", 2, None, None, "running", "unknown", None, 0.0, 0.0
    )
    world.provider.start(unknown)
    world.pass_()
    assert set(world.provider.stopped) == {stray.id, unknown.id}
    assert world.kinds()["instance.orphan"] == 2


def test_a_deleted_environment_leaves_no_process(world: World) -> None:
    world.env()
    world.pass_()
    world.store.delete_environment("hello", "production")
    world.pass_()
    assert world.provider.processes == {}
    assert world.router.table == {"routes": []}


def test_a_new_version_replaces_the_old_once_healthy(world: World) -> None:
    world.env()
    world.pass_()
    world.all_healthy()
    world.pass_()
    old = {i.id for i in world.live()}
    world.env()  # pushes v2 and makes it current
    world.pass_()
    assert len(world.live()) == 4  # old ones keep serving until the new ones are healthy
    world.all_healthy()
    world.pass_()
    live = world.live()
    assert {i.version for i in live} == {"v2"}
    assert old.isdisjoint(i.id for i in live)
    assert world.kinds()["instance.superseded"] == 2


def test_hosts_per_environment_and_default_route(world: World) -> None:
    world.env("production")
    world.env("staging")
    world.pass_()
    routes = {r["name"]: r for r in world.router.table["routes"]}
    assert routes["hello-production"]["hosts"] == ["hello.localhost"]
    assert routes["hello-staging"]["hosts"] == ["staging.hello.localhost"]
    # The first environment up keeps the default route: a newer one does not take it.
    assert [r["name"] for r in routes.values() if r["default"]] == ["hello-production"]
    # The router accepts the table exactly as the control plane builds it.
    parsed = parse_table(world.router.table)
    assert table_to_dict(parsed) == world.router.table


def test_explicit_groups_run_side_by_side_with_their_weights(world: World) -> None:
    world.env()
    world.pass_()
    world.all_healthy()
    world.pass_()
    blue = {i.id for i in world.live()}
    world.env()  # v2 pushed; a release puts it in its own group
    world.store.put_group("hello", "production", Group("blue", "v1", 2, 90))
    world.store.put_group("hello", "production", Group("green", "v2", 1, 10))
    world.pass_()
    live = world.live()
    assert {i.id for i in live if i.group_name == "blue"} == blue
    assert [(i.group_name, i.version) for i in live if i.id not in blue] == [("green", "v2")]
    groups = {g["name"]: g for g in world.router.table["routes"][0]["groups"]}
    assert {name: (g["weight"], g["version"], len(g["targets"])) for name, g in groups.items()} == {
        "blue": (90, "v1", 2),
        "green": (10, "v2", 1),
    }

    # The release finishes: blue's group is removed, its instances are drained and stopped.
    world.all_healthy()
    world.store.delete_group("hello", "production", "blue")
    world.store.put_group("hello", "production", Group("green", "v2", 2, 100))
    world.pass_()
    world.all_healthy()
    world.pass_()
    live = world.live()
    assert {(i.group_name, i.version) for i in live} == {("green", "v2")}
    assert len(live) == 2
    assert all(world.store.get_instance(i).state == "stopped" for i in blue)
    assert world.kinds()["instance.group_removed"] == 2


def test_a_failing_environment_neither_blocks_others_nor_loses_its_instances(world: World) -> None:
    world.env("production")
    world.env("staging")
    world.pass_()
    world.all_healthy()
    world.pass_()
    staging = {i.id for i in world.live("staging")}
    world.services.failing.add("staging")
    world.provider.exit(world.live("production")[0].id)
    world.pass_()
    world.pass_()
    assert len(world.live("production")) == 2  # replaced despite the other environment's failure
    assert {i.id for i in world.live("staging")} == staging  # kept, not swept as orphans
    assert not set(world.provider.stopped) & staging
    assert world.kinds()["env.error"] == 1  # recorded once, not every pass


def test_a_once_healthy_instance_is_replaced_only_after_its_checks_confirm_it(world: World) -> None:
    world.env()
    world.pass_()
    world.all_healthy()
    world.now += 100  # well past the launch grace
    world.pass_()
    victim = world.live()[0]
    world.router.healthy[victim.id] = False  # one failed connect takes it out of rotation
    world.pass_()
    assert victim.id in {i.id for i in world.live()}  # not yet: the router may bring it back
    world.now += 2.0 * 3  # health.interval (2 s) times unhealthy_threshold (3)
    world.pass_()
    live = world.live()
    assert victim.id not in {i.id for i in live}
    assert len(live) == 2  # replaced at once, no crash-loop back-off for a once-healthy instance
    assert world.kinds()["instance.replace"] == 1


def test_an_instance_that_recovers_is_kept(world: World) -> None:
    world.env()
    world.pass_()
    world.all_healthy()
    world.now += 100
    world.pass_()
    victim = world.live()[0]
    world.router.healthy[victim.id] = False
    world.pass_()
    world.now += 3.0
    world.router.healthy[victim.id] = True
    world.pass_()
    world.now += 10.0
    world.pass_()
    assert victim.id in {i.id for i in world.live()}
    assert world.kinds()["instance.replace"] == 0


def test_outside_a_release_the_serving_group_follows_the_desired_capacity(world: World) -> None:
    # After a blue/green release: green serves, blue is the warm standby kept for rollback.
    world.env()
    world.store.put_group("hello", "production", Group("green", "v1", 2, 100))
    world.store.put_group("hello", "production", Group("blue", "v1", 2, 0, standby_until=4_000_000_000.0))
    world.pass_()
    world.store.set_desired_capacity("hello", "production", 4, "sprout scale by alice")  # or the autoscaler
    world.pass_()
    groups = {g.name: (g.capacity, g.weight) for g in world.store.list_groups("hello", "production")}
    assert groups == {"green": (4, 100), "blue": (2, 0)}
    assert Counter(i.group_name for i in world.live()) == {"green": 4, "blue": 2}


def test_during_a_release_its_groups_keep_the_sizes_it_gave_them(world: World) -> None:
    world.env()
    world.store.put_group("hello", "production", Group("green", "v1", 2, 100))
    world.store.create_deployment("hello", "production", "v1", "bluegreen", "alice", state="launch", data={})
    world.store.set_desired_capacity("hello", "production", 4, "sprout scale by alice")
    world.pass_()
    assert [(g.name, g.capacity) for g in world.store.list_groups("hello", "production")] == [("green", 2)]
    assert len(world.live()) == 2

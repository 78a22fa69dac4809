"""Prometheus `/metrics` of the router and the daemon count what was sent; the default route stays put.

One real stack (daemon, router, agents) serves three environments: hello/production (the first up),
hello/staging and broken/production, whose instances fail their health checks.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_kit import HELLO, Sprout, edit_manifest, kill_all, processes_of
from prometheus_client.parser import text_string_to_metric_families

from loopback import free_port

pytestmark = pytest.mark.slow

ONE_INSTANCE = ('min = 2\nmax = 4\nzones = ["a", "b"]', 'min = 1\nmax = 1\nzones = ["a"]')


def _app(folder: Path, name: str, health_path: str = "/healthz") -> Path:
    """A copy of examples/hello with one instance, scaling off, its own name and health path."""
    shutil.copytree(HELLO, folder, ignore=shutil.ignore_patterns("__pycache__"))
    edit_manifest(folder, *ONE_INSTANCE)
    edit_manifest(folder, 'name = "hello"', f'name = "{name}"')
    edit_manifest(folder, 'path = "/healthz"', f'path = "{health_path}"')
    with open(folder / "sprout.toml", "a", encoding="utf-8") as out:
        out.write("\n[scaling]\nenabled = false\n")
    return folder


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Sprout]:
    """A private Sprout for the hello app; every environment down and every process gone at the end."""
    instance = Sprout(home=tmp_path / "home", app_dir=_app(tmp_path / "hello", "hello"), port=free_port())
    try:
        yield instance
    finally:
        if instance.home.exists():
            for app, env in (("broken", "production"), ("hello", "staging"), ("hello", "production")):
                instance.run("down", "--app", app, "--env", env, check=False, timeout=90)
        kill_all(processes_of(instance.home))


def _scrape(url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/metrics", headers=headers, timeout=10, trust_env=False)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, read by prometheus_client's own parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def _root(stack: Sprout) -> httpx.Response:
    """`http://127.0.0.1:PORT/`: a request naming no known host, answered by the default route."""
    return httpx.get(f"http://127.0.0.1:{stack.port}/", timeout=5, trust_env=False)


def _default(stack: Sprout) -> str:
    return next(f"{e['app']}/{e['env']}" for e in stack.status()["environments"] if e["default"])


def test_metrics_count_what_was_sent_and_the_default_route_stays_put(stack: Sprout, tmp_path: Path) -> None:
    first = stack.up()
    assert f"default route: http://127.0.0.1:{stack.port}/ serves hello/production" in first.stdout
    staging = stack.run("up", str(stack.app_dir), "--env", "staging", "--port", str(stack.port))
    assert "serves hello/production (`sprout route default hello/staging` moves it here)" in staging.stdout
    broken = _app(tmp_path / "broken", "broken", health_path="/not-here")
    failed = stack.run("up", str(broken), "--port", str(stack.port), check=False, timeout=180)
    assert failed.returncode != 0, failed.stdout
    # The failing app is recorded (its instances keep failing checks) but the default route did not move.
    assert _default(stack) == "hello/production"
    answer = _root(stack)
    assert answer.status_code == 200 and "Hello from Sprout" in answer.text

    router = stack.router()
    admin = f"http://127.0.0.1:{router['admin_port']}"
    router_token = (stack.home / "run" / "router.token").read_text().strip()
    assert _scrape(admin, None).status_code == 401
    assert _scrape(admin, "wrong").status_code == 401
    before = _samples(_scrape(admin, router_token).text)
    sent = {
        ("hello-production", "hello.localhost"): (7, 3),
        ("hello-staging", "staging.hello.localhost"): (4, 2),
    }
    with httpx.Client(timeout=5, trust_env=False) as client:
        for (_, host), (found, missing) in sent.items():
            for _ in range(found):
                assert (
                    client.get(f"http://127.0.0.1:{stack.port}/", headers={"Host": host}).status_code == 200
                )
            for _ in range(missing):
                got = client.get(f"http://127.0.0.1:{stack.port}/nothing", headers={"Host": host})
                assert got.status_code == 404
    page = _scrape(admin, router_token)
    assert page.headers["content-type"].startswith("text/plain")
    after = _samples(page.text)
    for (route, _), (found, missing) in sent.items():
        for cls, n in (("2xx", found), ("4xx", missing), ("5xx", 0)):
            for kind, name in (("route", "sprout_router_route_requests_total"),
                               ("group", "sprout_router_group_requests_total")):  # fmt: skip
                grown = _value(after, name, route=route, **{"class": cls}) - _value(
                    before, name, route=route, **{"class": cls}
                )
                assert grown == n, (kind, route, cls, grown)
        latency = "sprout_router_route_request_duration_seconds"
        counted = _value(after, f"{latency}_count", route=route) - _value(
            before, f"{latency}_count", route=route
        )
        infinite = _value(after, f"{latency}_bucket", route=route, le="+Inf") - _value(
            before, f"{latency}_bucket", route=route, le="+Inf"
        )
        assert counted == infinite == found + missing
        assert _value(after, "sprout_router_target_healthy", route=route) == 1
    assert _value(after, "sprout_router_target_healthy", route="broken-production") == 0
    assert _value(after, "sprout_router_group_healthy_targets", route="broken-production") == 0

    api = stack.daemon()["api_url"]
    assert _scrape(api, None).status_code == 401
    daemon = _samples(_scrape(api, stack.token()).text)
    for loop in ("reconcile", "releases", "autoscaler", "disk"):
        assert ("sprout_daemon_loop_stalled", frozenset({("loop", loop)})) in daemon, loop
    assert _value(daemon, "sprout_daemon_loop_stalled") == 0
    for (app, env), (desired, healthy) in {
        ("hello", "production"): (1, 1),
        ("hello", "staging"): (1, 1),
        ("broken", "production"): (1, 0),
    }.items():
        assert _value(daemon, "sprout_daemon_environment_desired_instances", app=app, env=env) == desired
        assert _value(daemon, "sprout_daemon_environment_healthy_instances", app=app, env=env) == healthy
        assert _value(daemon, "sprout_daemon_group_healthy_instances", app=app, env=env) == healthy
    assert _value(daemon, "sprout_daemon_environment_default_route", app="hello", env="production") == 1

    moved = stack.run("route", "default", "broken/production")
    assert "serves broken/production" in moved.stdout
    assert _default(stack) == "broken/production"
    _wait_root(stack, 503)
    stack.run("daemon", "stop")
    stack.run("daemon", "start")
    assert _default(stack) == "broken/production"
    assert "(default route)" in stack.run("status").stdout
    assert stack.run("route", "default").stdout.strip().endswith("serves broken/production")
    _wait_root(stack, 503)
    stack.run("route", "default", "hello/staging")
    _wait_root(stack, 200)
    bad = stack.run("route", "default", "nope", check=False)
    assert bad.returncode == 2 and "not APP/ENV" in bad.stderr
    unknown = stack.run("route", "default", "hello/nope", check=False)
    assert unknown.returncode == 2
    assert "(environments: broken/production, hello/production, hello/staging)" in unknown.stderr


def _wait_root(stack: Sprout, status: int, timeout: float = 30.0) -> None:
    """Wait until the default route answers `status` (the router gets the new table within a pass)."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = _root(stack).status_code
        if got == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"http://127.0.0.1:{stack.port}/ answered {got}, not {status}, for {timeout}s")

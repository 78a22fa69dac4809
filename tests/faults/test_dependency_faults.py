"""Dependency faults through tests/faults/faultproxy.py, in front of the real MariaDB and memcached.

The proxy's modes are checked against the real servers first (what a client sees for each fault); then the
reference apps run with their database (and session nodes) behind it: while the database hangs, requests
fail within the app's own timeouts (examples/*/db.py MYSQL_TIMEOUTS: connect 3 s, read 5 s, write 5 s;
a request may pay one failed pre-ping read and one reconnect, so at most 10 s) instead of hanging for the
whole outage, and they succeed again once it answers.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pymysql
import pytest
from pymemcache.client.base import Client as MemcacheClient
from pymemcache.exceptions import MemcacheError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from example_procs import EXAMPLES, PY, app_env, release, stop
from faultproxy import FaultProxy

from loopback import PORTS, free_port
from sprout.services import database, memcached
from sprout.services.memcached import MemcachedNode

#: The apps' database budget (see the module docstring) and the margin a loaded 2-core machine needs.
APP_DB_BUDGET = 10.0
MARGIN = 5.0
#: How long an outage lasts in these tests: far longer than the budget, so a hang would show.
OUTAGE = 40.0


@pytest.fixture
def db_name() -> Iterator[str]:
    """A scratch MariaDB database, dropped afterwards."""
    name = f"sprout_faults_{uuid.uuid4().hex[:12]}"
    database.ensure_database(f"mysql://root@127.0.0.1:3306/{name}")
    yield name
    database.drop_database(f"mysql://root@127.0.0.1:3306/{name}")


@pytest.fixture
def db_proxy() -> Iterator[FaultProxy]:
    """The fault proxy in front of MariaDB."""
    with FaultProxy("127.0.0.1", 3306) as proxy:
        yield proxy


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[MemcachedNode]]:
    """One memcached node per zone, a and b."""
    started = memcached.start_nodes(["a", "b"], memory_mb=16, log_dir=tmp_path, ports=PORTS)
    yield started
    memcached.stop_nodes(started)


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], str]]:
    """Start an example app (uvicorn) with an environment; its base URL once /healthz answers."""
    started: list[subprocess.Popen[bytes]] = []

    def start(app: str, env: dict[str, str]) -> str:
        port = free_port()
        env = env | {
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "SPROUT_ZONE": "a",
            "SPROUT_INSTANCE": f"{app}-1",
        }
        cmd = [
            PY,
            "-m",
            "uvicorn",
            f"{app}.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ]
        with open(tmp_path / f"{app}.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=EXAMPLES / app, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / f"{app}.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1, trust_env=False).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"{app} did not answer /healthz in 30s")

    yield start
    for proc in started:
        stop(proc)


def _mysql(proxy: FaultProxy, timeout: int = 2) -> pymysql.connections.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="root", connect_timeout=timeout, read_timeout=timeout
    )


def _get(url: str, path: str, cookies: dict[str, str] | None = None) -> int:
    """GET on a fresh connection (a server may close a kept-alive one after a failed request)."""
    return httpx.get(f"{url}{path}", cookies=cookies, timeout=OUTAGE + 20, trust_env=False).status_code


def _timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    try:
        result: object = call()
    except Exception as exc:  # what the fault does to a client is the observation
        result = exc
    return result, time.monotonic() - started


def test_the_proxy_injects_latency_reset_and_hang_into_mariadb(db_proxy: FaultProxy) -> None:
    conn = _mysql(db_proxy)
    cursor = conn.cursor()
    assert cursor.execute("SELECT 1") == 1

    db_proxy.set("latency", latency=0.3)
    _, slow = _timed(lambda: cursor.execute("SELECT 1"))
    assert slow >= 0.6  # the query and its answer each held 0.3 s

    db_proxy.set("reset")
    lost, _ = _timed(lambda: cursor.execute("SELECT 1"))
    assert isinstance(lost, pymysql.err.OperationalError), lost
    refused, _ = _timed(lambda: _mysql(db_proxy))
    assert isinstance(refused, pymysql.err.OperationalError), refused

    db_proxy.set("hang")
    hung, waited = _timed(lambda: _mysql(db_proxy, timeout=1))
    assert isinstance(hung, pymysql.err.OperationalError), hung
    assert waited >= 1.0

    db_proxy.set("pass")
    again = _mysql(db_proxy).cursor()
    assert again.execute("SELECT 1") == 1
    print(
        f"\nmariadb through the proxy: latency 0.3 s → {slow:.2f}s a query; hang → error after {waited:.2f}s"
    )


def test_the_proxy_injects_hang_and_reset_into_memcached(nodes: list[MemcachedNode]) -> None:
    with FaultProxy(nodes[0].host, nodes[0].port) as proxy:
        client = MemcacheClient(("127.0.0.1", proxy.port), connect_timeout=0.25, timeout=0.25)
        client.set("k", b"v")
        assert client.get("k") == b"v"
        proxy.set("hang")
        hung, waited = _timed(lambda: client.get("k"))
        assert isinstance(hung, (MemcacheError, OSError)), hung
        proxy.set("reset")
        client.close()
        reset, _ = _timed(lambda: client.get("k"))
        assert isinstance(reset, (MemcacheError, OSError)), reset
        proxy.set("pass")
        client.close()
        assert client.get("k") == b"v"
    print(f"\nmemcached through the proxy: hang → error after {waited:.2f}s (timeout 0.25 s)")


@pytest.mark.slow
@pytest.mark.parametrize(("app", "page"), [("microsite", "/"), ("lottery", "/")])
def test_a_hung_database_fails_requests_within_the_apps_timeouts(
    app: str,
    page: str,
    db_name: str,
    db_proxy: FaultProxy,
    nodes: list[MemcachedNode],
    start_app: Callable[[str, dict[str, str]], str],
) -> None:
    env = app_env(app, f"mysql://root@{db_proxy.address}/{db_name}", memcached.session_store_url(nodes))
    release(app, env)
    url = start_app(app, env)
    assert _get(url, page) == 200
    db_proxy.set("hang")
    outage = time.monotonic()
    answers: list[tuple[str, int, float]] = []
    for path in (page, "/readyz"):
        started = time.monotonic()
        answers.append((path, _get(url, path), time.monotonic() - started))
    assert time.monotonic() - outage < OUTAGE, f"requests waited for the whole outage: {answers}"
    for _, status, took in answers:
        assert status in (500, 503), answers
        assert took <= APP_DB_BUDGET + MARGIN, answers
    db_proxy.set("pass")
    back = time.monotonic()
    while _get(url, page) != 200:
        assert time.monotonic() - back < APP_DB_BUDGET + MARGIN, "no recovery after the outage"
        time.sleep(0.2)
    recovered = time.monotonic() - back
    print(f"\n{app} with a hung database: " + ", ".join(f"{p} {s} in {t:.1f}s" for p, s, t in answers)
          + f"; 200 again {recovered:.1f}s after it answers")  # fmt: skip


@pytest.mark.slow
def test_hung_session_nodes_do_not_hang_requests(
    db_name: str, nodes: list[MemcachedNode], start_app: Callable[[str, dict[str, str]], str]
) -> None:
    proxies = [FaultProxy(node.host, node.port) for node in nodes]
    try:
        sessions = "memcached://" + ",".join(
            f"{n.zone}={p.address}" for n, p in zip(nodes, proxies, strict=True)
        )
        env = app_env("microsite", f"mysql://root@127.0.0.1:3306/{db_name}", sessions)
        release("microsite", env)
        url = start_app("microsite", env)
        added = httpx.post(f"{url}/cart/add", data={"product_id": "1"}, timeout=OUTAGE, trust_env=False)
        assert added.status_code == 303
        cookies = dict(added.cookies)
        for proxy in proxies:
            proxy.set("hang")
        answers = []
        for path in ("/", "/readyz", "/cart"):
            started = time.monotonic()
            answers.append((path, _get(url, path, cookies), time.monotonic() - started))
        for proxy in proxies:
            proxy.set("pass")
        assert [status for _, status, _ in answers][1] == 503, answers
        assert all(took <= 1.0 + MARGIN for _, _, took in answers), answers
        print(
            "\nmicrosite with hung session nodes: " + ", ".join(f"{p} {s} in {t:.2f}s" for p, s, t in answers)
        )
    finally:
        for proxy in proxies:
            proxy.close()

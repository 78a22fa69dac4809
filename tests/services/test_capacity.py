"""`plan` and `validate` warn when a fleet at `max` can open more database connections than the server allows.

The server's limit is read from the real MariaDB on 127.0.0.1:3306 (and PostgreSQL on 5432); the
expected warnings are built from the value the server reports, so the tests hold whatever it is set to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from loopback import free_port
from sprout.services.capacity import ConnectionLimit, pool_warning, server_limit
from sprout.spec import parse_manifest

REPO = Path(__file__).resolve().parents[2]
MICROSITE = REPO / "examples" / "microsite"
MYSQL = "mysql://root@127.0.0.1:3306/microsite"


def mariadb_max_connections() -> int:
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=5)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@max_connections")
            row = cursor.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        conn.close()


def manifest(most: int, pool: int, url: str = MYSQL, engine: str = "mysql") -> object:
    return parse_manifest(
        {
            "app": {"name": "shop", "web": "run"},
            "instances": {"min": 1, "max": most},
            "resources": {"database": {"engine": engine, "url": url, "pool_size": pool}},
        }
    )


def expected_warning(most: int, pool: int, limit: int, source: str) -> str:
    return (
        f"resources.database: up to {most} instances x pool_size {pool} = {most * pool} connections, but the "
        f"server allows {limit} ({source}); lower [instances] max to {limit // pool} or pool_size to "
        f"{limit // most}, or raise the server's max_connections"
    )


def sprout(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    env.pop("SPROUT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_server_is_asked_for_its_limit() -> None:
    limit = server_limit(manifest(10, 20))  # type: ignore[arg-type]
    assert limit == ConnectionLimit(mariadb_max_connections(), "max_connections reported by 127.0.0.1:3306")


def test_postgres_is_asked_too() -> None:
    url = "postgres://postgres@127.0.0.1:5432/shop"
    limit = server_limit(manifest(10, 20, url, "postgres"))  # type: ignore[arg-type]
    assert limit is not None and limit.source == "max_connections reported by 127.0.0.1:5432"
    assert limit.value > 0


def test_an_unreachable_server_is_assumed_at_its_engines_default() -> None:
    url = f"mysql://root@127.0.0.1:{free_port()}/shop"
    limit = server_limit(manifest(10, 20, url))  # type: ignore[arg-type]
    assert limit == ConnectionLimit(151, "mysql's default; the server did not answer")


@pytest.mark.parametrize(
    ("most", "pool", "limit", "warned"),
    [
        (10, 20, 151, True),
        (7, 20, 151, False),
        (10, 15, 151, False),
        (10, 16, 151, True),
        (1, 200, 151, True),
    ],
)
def test_pool_warning_table(most: int, pool: int, limit: int, warned: bool) -> None:
    found = pool_warning(manifest(most, pool), ConnectionLimit(limit, "test"))  # type: ignore[arg-type]
    assert found == (expected_warning(most, pool, limit, "test") if warned else None)


def test_sqlite_has_no_connection_limit() -> None:
    embedded = parse_manifest({"app": {"name": "shop", "web": "run"}, "instances": {"max": 100}})
    assert server_limit(embedded) is None


def test_plan_of_the_microsite_warns_against_the_servers_limit(tmp_path: Path) -> None:
    app = tmp_path / "microsite"
    shutil.copytree(MICROSITE, app, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    limit = mariadb_max_connections()
    warning = "warning: " + expected_warning(10, 20, limit, "max_connections reported by 127.0.0.1:3306")
    planned = sprout(tmp_path / "home", "plan", str(app))
    assert planned.returncode == 0, planned.stderr
    flat = " ".join(planned.stdout.split())
    if limit < 10 * 20:  # 200 > 151 on a default MariaDB, as here
        assert warning in flat, planned.stdout
    else:
        assert "warning: resources.database" not in flat


def test_validate_warns_when_max_times_pool_exceeds_the_servers_limit(tmp_path: Path) -> None:
    limit = mariadb_max_connections()
    pool = limit // 10 + 1  # 10 instances of this pool always exceed the server's limit
    (tmp_path / "sprout.toml").write_text(
        '[app]\nname = "shop"\nweb = "run"\n[instances]\nmin = 1\nmax = 10\n'
        f'[resources.database]\nengine = "mysql"\nurl = "{MYSQL}"\npool_size = {pool}\n'
    )
    checked = sprout(tmp_path / "home", "validate", str(tmp_path))
    assert checked.returncode == 0, checked.stderr
    warning = "warning: " + expected_warning(10, pool, limit, "max_connections reported by 127.0.0.1:3306")
    assert warning in " ".join(checked.stdout.split()), checked.stdout

"""Fixtures for the lottery's own suite: a scratch database (SQLite, or a throwaway MariaDB/PostgreSQL
database next to the one DATABASE_URL names, never that one itself) and an app bound to it."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lottery.config import Settings
from lottery.db import engine_from_url, normalise_url
from lottery.migrate import migrate


def _server(url: sa.URL) -> sa.Engine:
    maintenance = None if url.get_backend_name() == "mysql" else "postgres"
    server = sa.URL.create(url.drivername, url.username, url.password, url.host, url.port, maintenance)
    return sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite in tmp_path by default; with DATABASE_URL set to MySQL/PostgreSQL, a scratch database there."""
    base = os.environ.get("DATABASE_URL", "")
    if not base or base.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/lottery.sqlite3"
        return
    url = sa.make_url(normalise_url(base))
    name = f"test_lottery_{uuid.uuid4().hex[:12]}"
    quoted = f"`{name}`" if url.get_backend_name() == "mysql" else f'"{name}"'
    server = _server(url)
    with server.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            # FORCE: engines of apps built by the tests may still hold PostgreSQL connections.
            force = "" if url.get_backend_name() == "mysql" else " WITH (FORCE)"
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
        server.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A migrated database."""
    engine = engine_from_url(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(engine: sa.Engine, database_url: str, tmp_path: Path) -> Settings:
    """Settings of one instance in zone a, with an admin token and three prizes."""
    return Settings(
        app="lottery",
        env="test",
        version="v-test",
        instance="i-test-1",
        zone="a",
        database_url=database_url,
        session_store_url=f"sqlite:///{tmp_path}/sessions.sqlite3",
        admin_token="s3cret",
        prizes=3,
    )

"""The database resource: URL normalisation, create-if-missing on MariaDB and PostgreSQL, SQLite paths."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from sprout.errors import ServiceError, UserError
from sprout.services import database


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("mysql://root@127.0.0.1:3306/shop", "mysql+pymysql://root@127.0.0.1:3306/shop"),
        ("mariadb://root@db/shop", "mysql+pymysql://root@db/shop"),
        ("mysql+pymysql://root@db/shop", "mysql+pymysql://root@db/shop"),
        ("postgres://u@db/shop", "postgresql+psycopg://u@db/shop"),
        ("postgresql://u@db/shop", "postgresql+psycopg://u@db/shop"),
        ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
    ],
)
def test_normalise_url(url: str, normalised: str) -> None:
    assert database.normalise_url(url) == normalised


@pytest.mark.parametrize(
    ("url", "standard"),
    [
        ("mysql+pymysql://root@db/shop", "mysql://root@db/shop"),
        ("mariadb://root@db/shop", "mysql://root@db/shop"),
        ("postgresql+psycopg://u@db/shop", "postgres://u@db/shop"),
        ("postgresql://u@db/shop", "postgres://u@db/shop"),
        ("sqlite:////srv/shop/db.sqlite3", "sqlite:////srv/shop/db.sqlite3"),
    ],
)
def test_database_url_is_standard_never_a_driver_scheme(url: str, standard: str, tmp_path: Path) -> None:
    engine = standard.split(":", 1)[0]
    assert database.database_url(engine, url, tmp_path) == standard


def test_sqlite_lives_in_the_environment_folder(tmp_path: Path) -> None:
    url = database.database_url("sqlite", None, tmp_path / "envs" / "prod")
    assert url == f"sqlite:///{tmp_path}/envs/prod/database.sqlite3"
    assert database.ensure_database(url) is True
    assert (tmp_path / "envs" / "prod").is_dir()
    database.check_database(url)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////tmp/a%20b.db",
        "sqlite:///rel.db",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:////tmp/x.db?mode=ro",
        "sqlite://host/x.db",
        "SQLite+pysqlite:////tmp/y.db",
        "mysql://root@db/shop",
    ],
)
def test_a_sqlite_file_is_read_from_its_url_as_sqlalchemy_reads_it(url: str) -> None:
    """The daemon reads SQLite URLs without importing SQLAlchemy; SQLAlchemy's reading is the reference."""
    parsed = sa.engine.make_url(url)
    expected = parsed.database if parsed.get_backend_name() == "sqlite" else None
    assert database.sqlite_path(url) == expected


def test_applying_a_sqlite_environment_never_imports_sqlalchemy(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, pathlib; from sprout.services import database as d; "
        f"url = d.database_url('sqlite', None, pathlib.Path({str(tmp_path)!r})); "
        "assert d.ensure_database(url); d.drop_database(url); "
        "print('sqlalchemy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_external_engines_need_a_url(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        database.database_url("mysql", None, tmp_path)
    assert str(err.value) == "[resources.database] engine 'mysql' needs a url, e.g. mysql://user@host/name"


@pytest.mark.parametrize("server", ["mysql://root@127.0.0.1:3306", "postgres://postgres@127.0.0.1:5432"])
def test_create_if_missing_then_nothing_to_do(server: str) -> None:
    url = f"{server}/sprout_test_{uuid.uuid4().hex[:12]}"
    try:
        assert database.ensure_database(url) is True
        assert database.ensure_database(url) is False
        database.check_database(url)
        engine = sa.create_engine(database.normalise_url(url))
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        engine.dispose()
    finally:
        database.drop_database(url)
    with pytest.raises(ServiceError):
        database.check_database(url)


def test_unsafe_database_names_are_refused() -> None:
    with pytest.raises(UserError, match="must name a database made of letters, digits and underscores"):
        database.ensure_database("mysql://root@127.0.0.1:3306/x`; DROP")


def test_unreachable_server_says_where() -> None:
    with pytest.raises(ServiceError) as err:
        database.ensure_database("mysql://root:secret@127.0.0.1:9/shop")
    message = str(err.value)
    assert message.startswith("database mysql+pymysql://root:***@127.0.0.1:9/shop: ")
    assert message.endswith("check that the server runs and the URL is right")

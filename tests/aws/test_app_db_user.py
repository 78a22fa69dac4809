"""The app's own database user on AWS, against real MariaDB and PostgreSQL servers and moto's Secrets Manager.

What an instance's boot and a deploy's release phase do with the stack's two secrets: the first boot
creates the app user with the master login; the app's `DATABASE_URL` carries the app user only; a
release re-reads the master secret and brings the app user's password up to date after a change.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sprout.providers.aws.boot import database_url
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.dbuser import DRIVERS, can_log_in, ensure_app_user

from .conftest import REGION, client

SERVERS = {
    "mysql": ("127.0.0.1", 3306, "root"),
    "postgres": ("127.0.0.1", 5432, "postgres"),
}


def admin(engine: str, database: str) -> sa.Engine:
    host, port, user = SERVERS[engine]
    return sa.create_engine(
        f"{DRIVERS[engine]}://{user}@{host}:{port}/{database}",
        poolclass=sa.pool.NullPool,
        isolation_level="AUTOCOMMIT",
    )


def stored_verifier(role: str) -> str:
    """PostgreSQL's stored password verifier of a role."""
    with admin("postgres", "postgres").connect() as conn:
        value = conn.exec_driver_sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'").scalar()
    return str(value)


def put_secret(name: str, username: str, password: str) -> str:
    sm = client("secretsmanager")
    body = json.dumps({"username": username, "password": password})
    arn: str = sm.create_secret(Name=name, SecretString=body)["ARN"]  # type: ignore[attr-defined]
    return arn


@pytest.fixture(params=sorted(SERVERS))
def scratch(request: pytest.FixtureRequest, aws: str) -> Iterator[tuple[str, BootConfig]]:
    """A fresh database on the real server, the stack's two secrets in moto, and the boot config naming them."""
    engine: str = request.param
    host, port, master = SERVERS[engine]
    tag = secrets.token_hex(4)
    database, user = f"sprt{tag}", f"sprt{tag}_app"
    home = "mysql" if engine == "mysql" else "postgres"
    with admin(engine, home).connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {database}")
    config = BootConfig(
        app="shop",
        env="prod",
        store_url="s3://bucket/shop",
        web="true",
        install=None,
        health_path="/healthz",
        port=8080,
        region=REGION,
        log_group="/sprout/shop/prod",
        database={
            "engine": engine,
            "host": host,
            "port": str(port),
            "name": database,
            "secret_arn": put_secret("rds!db-master", master, ""),
            "app_secret_arn": put_secret("shop-app-db", user, secrets.token_hex(16)),
        },
    )
    try:
        yield engine, config
    finally:
        with admin(engine, home).connect() as conn:
            if engine == "postgres":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{user}"')
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
                conn.exec_driver_sql(
                    f"DROP USER IF EXISTS '{user}'@'%'", execution_options={"no_parameters": True}
                )


def test_the_first_boot_makes_the_app_user_and_the_app_never_gets_the_master_login(
    scratch: tuple[str, BootConfig],
) -> None:
    engine, config = scratch
    db = config.database or {}
    user = f"{db['name']}_app"

    url = database_url(config)

    assert url is not None and url.startswith(("mysql://", "postgres://"))
    assert url.split("://")[1].split(":")[0] == user  # the app user, never the master login
    app = sa.create_engine(DRIVERS[engine] + url[url.index("://") :], poolclass=sa.pool.NullPool)
    try:
        with app.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO orders VALUES (1)")
            conn.commit()
            assert conn.exec_driver_sql("SELECT count(*) FROM orders").scalar() == 1
            # Its own database and nothing beyond it.
            with pytest.raises(sa.exc.DBAPIError):
                if engine == "mysql":
                    conn.exec_driver_sql("SELECT count(*) FROM mysql.user")
                else:
                    conn.exec_driver_sql("CREATE ROLE intruder")
    finally:
        app.dispose()


def test_a_release_brings_the_app_user_up_to_date_after_its_password_changed(
    scratch: tuple[str, BootConfig],
) -> None:
    engine, config = scratch
    db = config.database or {}
    first = database_url(config)
    assert first is not None and can_log_in(first, engine)
    before = stored_verifier(f"{db['name']}_app") if engine == "postgres" else None
    sm = client("secretsmanager")
    changed = secrets.token_hex(16)
    sm.put_secret_value(  # type: ignore[attr-defined]
        SecretId=db["app_secret_arn"],
        SecretString=json.dumps({"username": f"{db['name']}_app", "password": changed}),
    )

    assert ensure_app_user(config) == f"{db['name']}_app"

    second = database_url(config)
    assert second is not None and changed in second
    assert can_log_in(second, engine)
    if engine == "mysql":
        assert not can_log_in(first, engine)
    else:
        # This machine's PostgreSQL trusts every login from 127.0.0.1; the stored verifier shows the change.
        assert stored_verifier(f"{db['name']}_app") != before

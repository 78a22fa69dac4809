"""The app's own database login on RDS: created or brought up to date with the master login, read at that moment.

The stack generates the app user's password into its own Secrets Manager secret; the master login (RDS
manages and rotates its secret) is read only when a release phase, or the first boot after `up`, has to
create or update the app user. The app process is only ever given the app user's `DATABASE_URL`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from sprout.errors import ServiceError
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.clients import client

#: SQLAlchemy's driver for each engine (PyMySQL is one of Sprout's own dependencies; psycopg is the
#: `postgres` extra, which a PostgreSQL app needs anyway).
DRIVERS = {"mysql": "mysql+pymysql", "postgres": "postgresql+psycopg"}
#: The scheme of the `DATABASE_URL` the app gets (language-neutral, not SQLAlchemy's driver scheme).
URL_SCHEMES = {"mysql": "mysql", "postgres": "postgres"}


def read_login(config: BootConfig, key: str) -> tuple[str, str]:
    """(user, password) from the database secret named by `key` in the boot config, read now."""
    arn = (config.database or {})[key]
    try:
        value = client("secretsmanager", config.region).get_secret_value(SecretId=arn)
        secret: dict[str, Any] = json.loads(value["SecretString"])
        return str(secret["username"]), str(secret["password"])
    except Exception as exc:
        raise ServiceError(f"database secret {arn}: cannot read it ({exc}); check the instance role") from exc


def url_for(config: BootConfig, user: str, password: str, scheme: str) -> str:
    """A URL for the app's database on the stack's endpoint as `user`."""
    db = config.database or {}
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"{scheme}://{credentials}@{db['host']}:{db['port']}/{db['name']}"


def app_database_url(config: BootConfig) -> str:
    """The app user's `DATABASE_URL`, its password read from Secrets Manager now."""
    user, password = read_login(config, "app_secret_arn")
    return url_for(config, user, password, URL_SCHEMES[(config.database or {})["engine"]])


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _identifier(value: str, quote_char: str) -> str:
    return quote_char + value.replace(quote_char, quote_char * 2) + quote_char


def grant_statements(engine: str, user: str, password: str, database: str) -> list[str]:
    """SQL that creates `user` (or resets its password) with every privilege on `database` and none beyond."""
    if engine == "mysql":
        account = f"{_literal(user)}@'%'"
        return [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {_literal(password)}",
            f"ALTER USER {account} IDENTIFIED BY {_literal(password)}",
            f"GRANT ALL PRIVILEGES ON {_identifier(database, '`')}.* TO {account}",
        ]
    role = _identifier(user, '"')
    schema_db = _identifier(database, '"')
    return [
        # A DO block because PostgreSQL has no CREATE ROLE IF NOT EXISTS.
        "DO $$ BEGIN "
        f"CREATE ROLE {role} LOGIN PASSWORD {_literal(password)}; "
        f"EXCEPTION WHEN duplicate_object THEN ALTER ROLE {role} LOGIN PASSWORD {_literal(password)}; "
        "END $$",
        f"GRANT ALL PRIVILEGES ON DATABASE {schema_db} TO {role}",
        # PostgreSQL 15 took CREATE on schema public away from everyone; migrations need it.
        f"GRANT ALL ON SCHEMA public TO {role}",
    ]


def can_log_in(url: str, engine: str) -> bool:
    """Whether the app user's login works now."""
    driver_url = DRIVERS[engine] + url[url.index("://") :]
    db = sa.create_engine(driver_url, poolclass=sa.pool.NullPool)
    try:
        with db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        db.dispose()


def ensure_app_user(config: BootConfig) -> str:
    """Create or update the app's own user with the master login (read now); return the user name."""
    db = config.database or {}
    engine = db["engine"]
    master_user, master_password = read_login(config, "secret_arn")
    user, password = read_login(config, "app_secret_arn")
    master_url = url_for(config, master_user, master_password, DRIVERS[engine])
    admin = sa.create_engine(master_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in grant_statements(engine, user, password, db["name"]):
                # Sent as written: no bind-parameter parsing of the passwords, no %-formatting of '%'.
                conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
    except sa.exc.SQLAlchemyError as exc:
        raise ServiceError(
            f"database {db['host']}:{db['port']}/{db['name']}: cannot create the app user {user} "
            f"as {master_user} ({str(exc).splitlines()[0]})"
        ) from exc
    finally:
        admin.dispose()
    return user

"""The database resource: SQLite in the environment folder, or MySQL/PostgreSQL by URL, created if missing."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from sprout.errors import ServiceError, UserError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import URL

ENGINES = ("sqlite", "mysql", "postgres")
# Database names go into CREATE DATABASE unquoted by a driver, so only plain identifiers are accepted.
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
}
_STANDARD = {"mariadb": "mysql", "postgresql": "postgres"}


def normalise_url(url: str) -> str:
    """Give a bare `mysql://`/`postgres://` URL the driver Sprout installs (pymysql, psycopg)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UserError(f"database: {url!r} is not a URL; write e.g. mysql://user@host:3306/name")
    return f"{_DRIVERS.get(scheme.lower(), scheme)}://{rest}"


def standard_url(url: str) -> str:
    """The provider-independent DATABASE_URL of `url`: `mysql://`, `postgres://` or `sqlite:////abs/path`,
    never a SQLAlchemy driver scheme (`mysql+pymysql://`), so any language's client reads it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UserError(f"database: {url!r} is not a URL; write e.g. mysql://user@host:3306/name")
    base = scheme.lower().split("+", 1)[0]
    return f"{_STANDARD.get(base, base)}://{rest}"


def sqlite_url(env_dir: Path) -> str:
    """The embedded database of an environment: `<env_dir>/database.sqlite3`."""
    return f"sqlite:///{(env_dir / 'database.sqlite3').resolve()}"


def database_url(engine: str, url: str | None, env_dir: Path, password: str | None = None) -> str:
    """The DATABASE_URL an environment's instances get for its `[resources.database]` (`password`: the
    resolved value of its `password` secret, put into the URL's userinfo)."""
    if engine == "sqlite":
        return standard_url(url) if url else sqlite_url(env_dir)
    if engine not in ENGINES:
        raise UserError(f"[resources.database] engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")
    if not url:
        raise UserError(f"[resources.database] engine {engine!r} needs a url, e.g. {engine}://user@host/name")
    return standard_url(with_password(url, password) if password is not None else url)


def relative_sqlite_warning(url: str | None) -> str | None:
    """The warning for a SQLite `url` with a relative path, which each version would resolve in its own
    app folder (a new, empty database per version); None for any other url."""
    if url is None or not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if not path or path.startswith("/") or path == ":memory:":
        return None
    return (
        f'resources.database: url "{url}" is a relative path, so every version would get a new, empty '
        "database in its own app folder; write an absolute path with four slashes "
        f'("sqlite:////srv/data/{Path(path).name}") or remove url for the environment\'s own file '
        "(see docs/porting.md)"
    )


def with_password(url: str, password: str) -> str:
    """`url` with `password` (percent-encoded) in its userinfo, after its user name if it has one."""
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, _, host = authority.rpartition("@")
    return f"{scheme}://{userinfo}:{quote(password, safe='')}@{host}{slash}{path}"


def sqlite_path(url: str) -> str | None:
    """The database file a `sqlite://` URL names, as SQLAlchemy reads it (percent-decoded, without the
    query; "" or None when it names none); None for any other engine's URL."""
    if not _is_sqlite(url):
        return None
    _, slash, path = url.partition("://")[2].partition("/")
    return unquote(path.partition("?")[0]) if slash else None


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL keeps its database in; None for an in-memory one or one naming no file."""
    path = sqlite_path(url)
    return Path(path) if path and path != ":memory:" else None


def _is_sqlite(url: str) -> bool:
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.split("+", 1)[0] == "sqlite"


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist (SQLite: its folder); True if created."""
    if _is_sqlite(url):
        # Every environment's apply asks, and most use SQLite: that answer needs no SQLAlchemy, whose
        # import costs the daemon half a second.
        path = _sqlite_file(url)
        if path is None:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        return not path.exists()
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    parsed = _parse(url)
    name = _name(parsed)
    server = _server_engine(parsed)
    try:
        with server.connect() as conn:
            if _exists(conn, parsed, name):
                return False
            if parsed.get_backend_name() == "mysql":
                conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
            else:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            return True
    except SQLAlchemyError as exc:
        raise _unreachable(parsed, exc) from exc
    finally:
        server.dispose()


def drop_database(url: str) -> None:
    """Drop the database named in `url` if it exists (SQLite: delete the file)."""
    if _is_sqlite(url):
        path = _sqlite_file(url)
        if path is not None:
            path.unlink(missing_ok=True)
        return
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    parsed = _parse(url)
    name = _name(parsed)
    server = _server_engine(parsed)
    try:
        with server.connect() as conn:
            quoted = f"`{name}`" if parsed.get_backend_name() == "mysql" else f'"{name}"'
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
    except SQLAlchemyError as exc:
        raise _unreachable(parsed, exc) from exc
    finally:
        server.dispose()


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A new empty database on the server of `url` (named after its database), dropped on exit."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        raise UserError(f"database: a scratch database needs a MySQL or PostgreSQL server, not {url!r}")
    name = f"{_name(parsed)[:40]}_test_{secrets.token_hex(4)}"
    scratch = parsed.set(database=name).render_as_string(hide_password=False)
    ensure_database(scratch)
    try:
        yield scratch
    finally:
        drop_database(scratch)


def check_database(url: str) -> None:
    """Raise ServiceError unless the database answers `SELECT 1`."""
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    parsed = _parse(url)
    engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise _unreachable(parsed, exc) from exc
    finally:
        engine.dispose()


def _parse(url: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(normalise_url(url))
    except ArgumentError as exc:
        raise UserError(f"database: cannot parse URL {url!r}: {exc}") from exc


def _name(parsed: URL) -> str:
    name = parsed.database or ""
    if not _NAME.match(name):
        raise UserError(
            f"database: {parsed.render_as_string(hide_password=True)} must name a database made of "
            "letters, digits and underscores, e.g. mysql://root@127.0.0.1:3306/microsite"
        )
    return name


def _server_engine(parsed: URL) -> sa.Engine:
    import sqlalchemy as sa
    from sqlalchemy.engine import URL

    # Connect to the server, not the maybe-missing database: no db for MySQL, the maintenance db for Postgres.
    server_db = None if parsed.get_backend_name() == "mysql" else "postgres"
    server = URL.create(
        parsed.drivername, parsed.username, parsed.password, parsed.host, parsed.port, server_db, parsed.query
    )
    return sa.create_engine(server, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")


def _exists(conn: sa.Connection, parsed: URL, name: str) -> bool:
    import sqlalchemy as sa

    if parsed.get_backend_name() == "mysql":
        query = "SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"
    else:
        query = "SELECT 1 FROM pg_database WHERE datname = :name"
    return conn.execute(sa.text(query), {"name": name}).first() is not None


def _unreachable(parsed: URL, exc: Exception) -> ServiceError:
    where = parsed.render_as_string(hide_password=True)
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return ServiceError(f"database {where}: {detail}; check that the server runs and the URL is right")

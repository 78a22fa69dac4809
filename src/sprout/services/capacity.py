"""Whether a fleet at its largest can open more database connections than the server allows.

Every instance holds its own pool (`[resources.database] pool_size`), so at `[instances] max` the fleet
may hold `max x pool_size` connections; past the server's `max_connections` new connections fail with
"Too many connections" exactly when the campaign peaks. The limit is asked of the server when it can be
reached within `PROBE_TIMEOUT`; otherwise the engine's documented default is assumed and the warning
says so.
"""

from __future__ import annotations

from typing import NamedTuple

from sprout.errors import SproutError
from sprout.services.database import normalise_url
from sprout.spec.models import Manifest

#: How long `plan`/`validate` wait for the database server to say its limit.
PROBE_TIMEOUT = 2
#: The engines' own defaults of `max_connections` (MySQL/MariaDB 151, PostgreSQL 100).
DEFAULT_LIMITS = {"mysql": 151, "postgres": 100}
_QUERIES = {"mysql": "SELECT @@max_connections", "postgres": "SHOW max_connections"}


class ConnectionLimit(NamedTuple):
    """A database server's connection limit and where the figure comes from."""

    value: int
    source: str


def server_limit(manifest: Manifest) -> ConnectionLimit | None:
    """The connection limit of the manifest's database server: asked, or the engine's default; None for SQLite."""
    database = manifest.resources.database
    if database.engine == "sqlite" or database.url is None:
        return None
    default = ConnectionLimit(
        DEFAULT_LIMITS[database.engine], f"{database.engine}'s default; the server did not answer"
    )
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    try:
        url = sa.engine.make_url(normalise_url(database.url))
        # The server, not the maybe-missing database: no database for MySQL, the maintenance one for Postgres.
        server = sa.engine.URL.create(
            url.drivername,
            url.username,
            url.password,
            url.host,
            url.port,
            None if database.engine == "mysql" else "postgres",
            url.query,
        )
        engine = sa.create_engine(
            server, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": PROBE_TIMEOUT}
        )
        try:
            with engine.connect() as conn:
                value = conn.execute(sa.text(_QUERIES[database.engine])).scalar()
        finally:
            engine.dispose()
    except (SQLAlchemyError, SproutError, ValueError, OSError):
        return default
    where = f"{url.host or 'localhost'}:{url.port or ''}".rstrip(":")
    return ConnectionLimit(int(str(value)), f"max_connections reported by {where}")


def pool_warning(manifest: Manifest, limit: ConnectionLimit | None) -> str | None:
    """The warning when `max x pool_size` exceeds `limit`, naming the figures and what to change; else None."""
    if limit is None:
        return None
    most, pool = manifest.instances.max, manifest.resources.database.pool_size
    if most * pool <= limit.value:
        return None
    fits = limit.value // pool
    return (
        f"resources.database: up to {most} instances x pool_size {pool} = {most * pool} connections, but the "
        f"server allows {limit.value} ({limit.source}); lower [instances] max to {fits} or pool_size to "
        f"{limit.value // most}, or raise the server's max_connections"
    )


def capacity_warnings(manifest: Manifest) -> list[str]:
    """Every capacity warning for this manifest (asks the database server when reachable)."""
    found = pool_warning(manifest, server_limit(manifest))
    return [found] if found is not None else []

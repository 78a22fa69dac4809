"""The lottery's schema (SQLAlchemy Core) and an engine for SQLite, MySQL/MariaDB or PostgreSQL URLs."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

entries = sa.Table(
    "entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket", sa.String(16), nullable=False, unique=True),
    # One ticket per email, enforced by the database so concurrent submits cannot both win.
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

rounds = sa.Table(
    "rounds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(8), nullable=False),  # open -> closed -> drawn
    sa.Column("seed", sa.String(64), nullable=False),  # secret until the draw
    sa.Column("commitment", sa.String(64), nullable=False),  # sha256(seed), public from the start
    sa.Column("prizes", sa.Integer, nullable=False),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("ticket_count", sa.Integer),
    sa.Column("tickets_digest", sa.String(64)),
    sa.Column("drawn_at", sa.DateTime),
    sa.Column("winners", sa.Text),  # JSON list, first prize first
)

POOL_SIZE = 20
#: Seconds PyMySQL may wait to connect, and for each read or write, before the request fails: a database
#: that stops answering fails requests within these bounds instead of hanging them for the whole outage.
#: A `?connect_timeout=…` (or read/write) in DATABASE_URL overrides its default.
MYSQL_TIMEOUTS = {"connect_timeout": 3, "read_timeout": 5, "write_timeout": 5}
_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mysql+pymysql", "postgres": "postgresql+psycopg"}


def normalise_url(url: str) -> str:
    """Give a bare `mysql://` or `postgres://` URL the driver this app ships with."""
    scheme, sep, rest = url.partition("://")
    return f"{_DRIVERS.get(scheme, scheme)}{sep}{rest}"


def engine_from_url(url: str, pool_size: int = POOL_SIZE) -> sa.Engine:
    """An engine sized for one app process; SQLite waits on locks instead of failing."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    # No overflow: overflow connections are closed on return, so a busy instance would reconnect on
    # almost every request; the app caps its worker threads at the pool size instead (see app.py).
    given = sa.engine.make_url(url).query
    timeouts = {k: v for k, v in MYSQL_TIMEOUTS.items() if k not in given} if url.startswith("mysql") else {}
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=timeouts,
    )
